package appliance

import (
	"fmt"
	"net/netip"
	"time"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/port"
	"sipedge/sipcore"
)

// The daemon builds its pipeline with these three functions, and so does
// sipreplay --into pipeline: a replay measures exactly what the daemon
// runs, whatever stages and settings are added here later.

// NewBackends resolves [dispatcher] backends (host names are looked up
// here, never per packet) into a backend set with every backend up until a
// prober says otherwise.
func NewBackends(cfg *config.Config) (*pipeline.Backends, error) {
	specs, err := backendSpecs(cfg)
	if err != nil {
		return nil, err
	}
	b, err := pipeline.NewBackends(specs)
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	return b, nil
}

// NewProxy builds the proxy every worker of the node shares, from [node]
// and [dispatcher]. self is the address the node answers as: its Via
// sent-by and Record-Route, the first of its names (then node.addresses),
// and its SIP port.
func NewProxy(cfg *config.Config, key *sipcore.Key, backends *pipeline.Backends, self netip.AddrPort) (*pipeline.Proxy, error) {
	sentBy := self.String()
	pc := pipeline.ProxyConfig{
		Key:        key,
		SentBy:     sentBy,
		Names:      append([]string{self.Addr().String()}, cfg.Node.Addresses...),
		Ports:      []uint16{self.Port()},
		Backends:   backends,
		RetryAfter: retryAfter(cfg),
	}
	if cfg.Dispatcher.RecordRoute {
		pc.RecordRoute = "sip:" + sentBy + ";lr"
	}
	p, err := pipeline.NewProxy(pc)
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	return p, nil
}

func retryAfter(cfg *config.Config) int {
	return int(cfg.Dispatcher.RetryAfter.Std() / time.Second)
}

// NewWorker builds a worker on p running Stages(proxy, extra), with the
// settings [io] and [dispatcher] give every worker (batch, Retry-After) and
// key. wc carries what differs per worker and per use: ID, Core,
// SampleEvery, Now, the auth helper and its fallback; its Key and Batch are
// overwritten, and RetryAfter defaults to [dispatcher] retry_after.
func NewWorker(cfg *config.Config, key *sipcore.Key, proxy *pipeline.Proxy, p port.Port, wc pipeline.Config, extra Extra) (*pipeline.Worker, error) {
	stages, err := Stages(proxy, extra)
	if err != nil {
		return nil, err
	}
	wc.Key, wc.Batch = key, cfg.IO.Batch
	if wc.RetryAfter == 0 {
		wc.RetryAfter = retryAfter(cfg)
	}
	w, err := pipeline.NewWorker(p, wc, stages)
	if err != nil {
		return nil, fmt.Errorf("appliance: worker %d: %w", wc.ID, err)
	}
	return w, nil
}

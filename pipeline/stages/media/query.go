package media

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"sipedge/pipeline/stages/media/ng"
)

// CallStats is what a relay reports of one call (ng query): the
// operator's view of a call's media (admin GET /media/calls/{id}).
type CallStats struct {
	Relay netip.AddrPort
	// Created is when the relay created the call (unix seconds).
	Created int64
	// RTP totals over every stream of the call.
	RTPPackets, RTPBytes, RTPErrors int64
}

// ErrNoRelay says no relay is up to ask.
var ErrNoRelay = errors.New("media: no relay is up")

// Query asks the call's relay (picked as for its offers) what it holds
// for callID. It opens its own socket: it is for the admin server, never
// for a worker.
func (m *Media) Query(callID string, timeout time.Duration) (CallStats, error) {
	set := m.relays.Load()
	k := set.Pick([]byte(callID))
	if k < 0 {
		return CallStats{}, ErrNoRelay
	}
	st := CallStats{Relay: set.Backends[k].Addr}
	cl, err := ng.NewClient(netip.AddrPortFrom(m.cfg.Local, 0), "q")
	if err != nil {
		return st, err
	}
	defer cl.Close()
	cl.Retry = m.cfg.Retry
	var e ng.Enc
	cl.Begin(&e)
	e.Dict()
	e.KS("command", "query")
	e.KS("call-id", callID)
	e.End()
	d := ng.NewDecoded(1 << 14)
	if err := cl.Do(st.Relay, e.B, time.Now().Add(timeout), d); err != nil {
		return st, fmt.Errorf("media: query %q on %v: %w", callID, st.Relay, err)
	}
	if res, reason := ng.Result(d); string(res) != "ok" {
		return st, fmt.Errorf("media: query %q on %v: %s %s", callID, st.Relay, res, reason)
	}
	st.Created = d.Int(d.Get(0, "created"))
	rtp := d.Get(d.Get(0, "totals"), "RTP")
	st.RTPPackets, st.RTPBytes, st.RTPErrors = d.Int(d.Get(rtp, "packets")), d.Int(d.Get(rtp, "bytes")), d.Int(d.Get(rtp, "errors"))
	return st, nil
}

package chain

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"sipedge/pipeline"
	"sipedge/pipeline/node"
	"sipedge/pipeline/stages/response"
	"sipedge/pipeline/stages/route"
	"sipedge/pipeline/stages/sanity"
	"sipedge/pipeline/stages/self"
	"sipedge/sipcore"
)

// Chain is an order of stages, by their declarations.
type Chain []*pipeline.StageDef

// Names are the stages' names in order.
func (c Chain) Names() []string {
	out := make([]string, len(c))
	for i, d := range c {
		out[i] = d.Name
	}
	return out
}

// Only keeps the stages named, in the chain's order; a name not in the
// chain panics (a test's mistake).
func (c Chain) Only(names ...string) Chain {
	for _, n := range names {
		if !slices.Contains(c.Names(), n) {
			panic("chain: no stage " + n + " in " + strings.Join(c.Names(), ", "))
		}
	}
	var out Chain
	for _, d := range c {
		if slices.Contains(names, d.Name) {
			out = append(out, d)
		}
	}
	return out
}

// Without leaves out the stages named.
func (c Chain) Without(names ...string) Chain {
	var out Chain
	for _, d := range c {
		if !slices.Contains(names, d.Name) {
			out = append(out, d)
		}
	}
	return out
}

// Insert puts defs just before the stage named before (at the end when
// before is ""): tests' own stages. A name not in the chain panics.
func (c Chain) Insert(before string, defs ...*pipeline.StageDef) Chain {
	i := len(c)
	if before != "" {
		i = slices.IndexFunc(c, func(d *pipeline.StageDef) bool { return d.Name == before })
		if i < 0 {
			panic("chain: no stage " + before + " in " + strings.Join(c.Names(), ", "))
		}
	}
	return slices.Concat(c[:i:i], Chain(defs), c[i:])
}

// Makers orders the stages a node has (makers, in any order) as the chain
// says. A stage of the chain without a maker is off (its section is
// disabled) and left out; a maker whose stage is not in the chain is an
// error (add its line to chain.go), and so is a name given twice.
func (c Chain) Makers(makers ...pipeline.StageMaker) ([]pipeline.StageMaker, error) {
	byName := map[string]pipeline.StageMaker{}
	for _, m := range makers {
		if m == nil {
			continue
		}
		n := m.Def().Name
		if _, dup := byName[n]; dup {
			return nil, fmt.Errorf("chain: two makers for stage %q", n)
		}
		byName[n] = m
	}
	var out []pipeline.StageMaker
	for _, d := range c {
		if m, ok := byName[d.Name]; ok {
			out = append(out, m)
			delete(byName, d.Name)
		}
	}
	for n := range byName {
		return nil, fmt.Errorf("chain: stage %q is not in the chain: add it to pipeline/chain/chain.go (or the test's Chain)", n)
	}
	if len(out) == 0 {
		return nil, errors.New("chain: no stage of the chain was given")
	}
	return out, nil
}

// ProxyConfig is what the stateless proxy's stages (sanity, response,
// self, route) need: the node and the dispatcher.
type ProxyConfig struct {
	// Key is the cluster key (sipcore.NewKey of [node] secret).
	Key *sipcore.Key
	// SentBy is our Via sent-by, "192.0.2.1:5060" or "[2001:db8::1]:5060".
	SentBy string
	// RecordRoute is the URI we record-route initial requests with
	// ("sip:192.0.2.1:5060;lr"); empty adds none.
	RecordRoute string
	// Names are the hosts that mean "this appliance"; Ports the ports we
	// listen on (empty: 5060).
	Names []string
	Ports []uint16
	// Backends is the dispatcher's backend list (shared by all workers).
	Backends *pipeline.Backends
	// RetryAfter is the Retry-After (seconds) of 503s when no backend is up.
	RetryAfter int
	// BackendDestinations are where initial requests from backends may go
	// (route.Config).
	BackendDestinations []netip.Prefix
	// Allow and Accept are the values of our answer to OPTIONS.
	Allow, Accept string
	// MaxMessageSize is the longest datagram served ([guard]
	// max_message_size; 0: UDP's limit): longer requests get 513.
	MaxMessageSize int
	// PassRegister: REGISTER to the node itself goes on to the registrar.
	PassRegister bool
	// MarkLateOffer: the media stages anchor calls (node.Config).
	MarkLateOffer bool
}

// Proxy makes the stateless proxy's four stages (their shared, compiled
// forms) from one configuration.
func Proxy(cfg ProxyConfig) ([]pipeline.StageMaker, error) {
	n, err := node.New(node.Config{Key: cfg.Key, Names: cfg.Names, Ports: cfg.Ports, MarkLateOffer: cfg.MarkLateOffer})
	if err != nil {
		return nil, err
	}
	sa, err := sanity.New(sanity.Config{Node: n, MaxMessageSize: cfg.MaxMessageSize})
	if err != nil {
		return nil, err
	}
	re, err := response.New(response.Config{Node: n})
	if err != nil {
		return nil, err
	}
	se, err := self.New(self.Config{Node: n, Allow: cfg.Allow, Accept: cfg.Accept, PassRegister: cfg.PassRegister})
	if err != nil {
		return nil, err
	}
	ro, err := route.New(route.Config{Node: n, SentBy: cfg.SentBy, RecordRoute: cfg.RecordRoute, Backends: cfg.Backends, RetryAfter: cfg.RetryAfter,
		BackendDestinations: cfg.BackendDestinations})
	if err != nil {
		return nil, err
	}
	return []pipeline.StageMaker{sa, re, se, ro}, nil
}

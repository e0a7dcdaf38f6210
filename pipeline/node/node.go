package node

import (
	"errors"
	"strings"

	"sipedge/sipcore"
)

// Config is the node's identity.
type Config struct {
	// Key is the cluster key (sipcore.NewKey of [node] secret).
	Key *sipcore.Key
	// Names are the hosts that mean "this appliance" in a Request-URI or
	// Route: its addresses and DNS names (compared case-insensitively).
	Names []string
	// Ports are the ports we listen on; a URI with no port means 5060.
	// Empty means {5060}.
	Ports []uint16
	// MarkLateOffer: media is anchored on this node, so forwarded INVITEs
	// without SDP are marked for their 2xx (sipcore.ForwardOptions).
	MarkLateOffer bool
}

// Node is the compiled Config.
type Node struct {
	Key *sipcore.Key
	// MarkLateOffer is Config's: every stage that forwards requests sets
	// sipcore.ForwardOptions.MarkLateOffer from it.
	MarkLateOffer bool
	names         [][]byte
	ports         []uint16
}

// New checks cfg and compiles it.
func New(cfg Config) (*Node, error) {
	if cfg.Key == nil {
		return nil, errors.New("node: Key is required (sipcore.NewKey of [node] secret)")
	}
	if len(cfg.Names) == 0 {
		return nil, errors.New("node: Names must list at least the appliance's address ([node] addresses)")
	}
	n := &Node{Key: cfg.Key, ports: cfg.Ports, MarkLateOffer: cfg.MarkLateOffer}
	if len(n.ports) == 0 {
		n.ports = []uint16{5060}
	}
	for _, s := range cfg.Names {
		n.names = append(n.names, []byte(strings.ToLower(s)))
	}
	return n, nil
}

// IsName reports whether host h names this node.
func (n *Node) IsName(h []byte) bool {
	for _, x := range n.names {
		if len(x) == len(h) && equalFoldLower(h, x) {
			return true
		}
	}
	return false
}

func equalFoldLower(a, lower []byte) bool {
	for i := range a {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (n *Node) isOurPort(u *sipcore.URI) bool {
	port := uint16(5060)
	if u.HasPort {
		port = u.Port
	}
	for _, q := range n.ports {
		if q == port {
			return true
		}
	}
	return false
}

// IsLocal reports whether a Route URI names this appliance (loose-route
// removal, RFC 3261 16.4).
func (n *Node) IsLocal(buf []byte, u *sipcore.URI) bool {
	if u.Scheme != sipcore.SchemeSIP && u.Scheme != sipcore.SchemeSIPS {
		return false
	}
	return n.IsName(buf[u.Host.Off:u.Host.End()]) && n.isOurPort(u)
}

// IsSelf reports whether a Request-URI addresses the appliance itself (not
// a user at it).
func (n *Node) IsSelf(buf []byte, u *sipcore.URI) bool {
	return u.User.Len == 0 && n.IsLocal(buf, u)
}

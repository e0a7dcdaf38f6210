package config

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
)

// minSecret is the shortest cluster secret accepted: below 128 bits an HMAC
// key for nonces and branch keys can be searched.
const minSecret = 16

// Node is [node]: who this appliance is.
type Node struct {
	// Name identifies the node in logs and metrics; empty means the host
	// name.
	Name string `toml:"name"`
	// Addresses are the IPs and host names that mean "this node" when they
	// appear in a Request-URI or a Route header.
	Addresses []string `toml:"addresses"`
	// Secret is the cluster-wide secret keying stateless nonces and branch
	// parameters; every node of a cluster must have the same one.
	Secret string `toml:"secret"`

	// SecretGenerated is true when Secret was generated at load because
	// the file left it empty.
	SecretGenerated bool `toml:"-"`
}

func (n *Node) setDefaults() {
	*n = Node{Addresses: []string{}}
}

func (n *Node) afterDecode(map[string]any) []Warning {
	var warns []Warning
	if n.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "sipedge"
			warns = append(warns, Warning{"node.name", "the host name is unknown, using \"sipedge\": set node.name"})
		}
		n.Name = h
	}
	if n.Secret == "" {
		var b [32]byte
		rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
		n.Secret = hex.EncodeToString(b[:])
		n.SecretGenerated = true
		warns = append(warns, Warning{"node.secret", "empty, so a random one was generated: other nodes will not recognise this node's nonces and branches; set the same secret (e.g. from `openssl rand -hex 32`) on every node"})
	}
	return warns
}

func (n *Node) check(p *problems, _ *Config, _ System) {
	if !isToken(n.Name, 64) {
		p.addv("node.name", n.Name, "want 1 to 64 letters, digits, '.', '-' or '_' (it labels logs and metrics)")
	}
	seen := map[string]int{}
	for i, a := range n.Addresses {
		key := "node.addresses[" + itoa(i) + "]"
		if _, err := netip.ParseAddr(a); err != nil && !isHostname(a) {
			p.addv(key, a, "want an IP address or a host name, without port or brackets")
			continue
		}
		if j, dup := seen[a]; dup {
			p.addv(key, a, "already listed as node.addresses[%d]: remove one", j)
		}
		seen[a] = i
	}
	if n.Secret != "" && len(n.Secret) < minSecret {
		// The secret itself is never echoed: error output ends up in logs.
		p.add("node.secret", "is %d bytes: want at least %d (e.g. `openssl rand -hex 32`), the same on every node", len(n.Secret), minSecret)
	}
}

package auth_test

import (
	"net/netip"
	"strings"
	"testing"

	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/authtest"
)

const forgedPAI = "P-Asserted-Identity: <sip:ceo@example.com>\r\n"

func withPAI(req string) string {
	return strings.Replace(req, "Content-Length:", forgedPAI+"P-Asserted-Identity: \"Boss\" <tel:+15551234>\r\nContent-Length:", 1)
}

func paiLines(msg string) []string {
	var out []string
	for _, l := range strings.Split(msg, "\r\n") {
		if strings.HasPrefix(strings.ToLower(l), "p-asserted-identity:") {
			out = append(out, l)
		}
	}
	return out
}

// P-Asserted-Identity from outside is never forwarded; after
// authentication the node asserts the authenticated user; a trusted
// source's own assertion is kept.
func TestPAssertedIdentity(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	trusted := netip.MustParseAddrPort("10.9.9.9:5060")
	r := rigWith(t, st, func(c *auth.Config) { c.Trusted = append(c.Trusted, mustPrefix("10.9.9.0/24")) })
	c := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	fwd := r.Expect(0, withPAI(c.Request("INVITE", nonce)))
	if got := paiLines(fwd); len(got) != 1 || got[0] != "P-Asserted-Identity: <sip:alice@example.com>" {
		t.Errorf("authenticated INVITE forwarded with %q, want only this node's assertion of alice", got)
	}
	if m := r.A.Metrics(); m.Successes != 1 {
		t.Fatalf("metrics %+v", m)
	}
	// A request that needs no authentication still loses a forged one.
	bye := strings.Replace(withPAI(c.Request("INVITE", "")), "INVITE", "BYE", 2)
	out := r.Send(authtest.Caller, bye)
	if len(out) != 1 || len(paiLines(string(out[0].Payload))) != 0 {
		t.Errorf("BYE from outside forwarded with %q", paiLines(string(out[0].Payload)))
	}
	// A trusted peer's assertion is its to make.
	out = r.Send(trusted, withPAI(c.Request("INVITE", "")))
	if len(out) != 1 || len(paiLines(string(out[0].Payload))) != 2 {
		t.Errorf("trusted INVITE forwarded with %q, want its two assertions", paiLines(string(out[0].Payload)))
	}
}

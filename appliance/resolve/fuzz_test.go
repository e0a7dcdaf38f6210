package resolve_test

import (
	"strconv"
	"strings"
	"testing"

	"sipedge/appliance/resolve"
)

// ParseName reads what an operator typed: whatever it is, it answers a
// name or an error that quotes the input, and never panics.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"example.com", "sip:pbx.example.com:5080;transport=udp", "[2001:db8::1]:5060", "10.0.0.1",
		"sips:x", "sip:u@h;maddr=1.2.3.4", "_sip._udp.example.com", "sip:[::1", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := resolve.ParseName(s)
		if err != nil {
			if strings.TrimSpace(s) != "" && !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Errorf("error %q does not quote the input %q", err, s)
			}
			return
		}
		if n.Host == "" || (n.Static() == (n.IP.String() == "invalid IP")) {
			t.Errorf("%q parsed to %+v", s, n)
		}
	})
}

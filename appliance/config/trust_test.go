package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestBackendDestinations(t *testing.T) {
	c, _, err := Check([]byte("[dispatcher]\nbackend_destinations = [\"198.51.100.0/24\", \"2001:db8::5\"]\n"+oneBackend), "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::5/128")}
	if got := c.Dispatcher.BackendDestinationPrefixes(); !reflect.DeepEqual(got, want) {
		t.Errorf("BackendDestinationPrefixes = %v, want %v", got, want)
	}
	_, _, err = Check([]byte("[dispatcher]\nbackend_destinations = [\"anywhere\", \"::ffff:1.2.3.4\"]\n"+oneBackend), "in", nil)
	for _, w := range []string{`dispatcher.backend_destinations[0] "anywhere": want a CIDR`, `dispatcher.backend_destinations[1] "::ffff:1.2.3.4": want a CIDR`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v, want it to contain %q", err, w)
		}
	}
}

func TestGuardTrustKeys(t *testing.T) {
	c, _, err := Check([]byte("[guard]\nbackend_rate = 9000\nbackend_burst = 20000\nscanner_matches = 3\n"+oneBackend), "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Guard; g.BackendRate != 9000 || g.BackendBurst != 20000 || g.ScannerMatches != 3 || g.AllowBackends {
		t.Errorf("decoded %+v, want backend 9000/20000, scanner_matches 3, allow_backends off by default", g)
	}
	_, _, err = Check([]byte("[guard]\nbackend_rate = 0\nbackend_burst = 2000000\nscanner_matches = 0\n"+oneBackend), "in", nil)
	for _, w := range []string{"guard.backend_rate=0: want 1 to", "guard.backend_burst=2000000: want 1 to", "guard.scanner_matches=0: want 1 to 1000"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v, want it to contain %q", err, w)
		}
	}
}

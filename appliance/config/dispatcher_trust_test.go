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

package config

import (
	"strings"
	"testing"
)

func TestRegistrarErrors(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"roles-domains", "[registrar]\nenabled = true\nroles = [\"proxy\"]\ndomains = [\"example.com:5060\"]", []string{
			`config: registrar.roles[0] "proxy": want "registrar" or "location"`,
			`config: registrar.domains[0] "example.com:5060": want a domain name`}},
		{"expires", "[registrar]\nenabled = true\ndomains = [\"example.com\"]\nmin_expires = \"2h\"\nmax_expires = \"1500ms\"", []string{
			`config: registrar.max_expires=1.5s: want whole seconds`,
			`config: registrar.default_expires: want min_expires (2h0m0s) <= default_expires (1h0m0s) <= max_expires (1.5s)`}},
		{"store", "[registrar]\nenabled = true\ndomains = [\"example.com\"]\nstore = \"redis\"\non_max_contacts = \"drop\"\n[registrar.redis]\naddresses = [\"localhost\"]\nprefix = \"a{b}\"", []string{
			`config: registrar.on_max_contacts "drop": want "refuse" (403) or "evict-oldest"`,
			`config: registrar.redis.addresses[0] "localhost": want host:port`,
			`config: registrar.redis.prefix "a{b}": want a key prefix without braces`}},
		{"no-domain", "[registrar]\nenabled = true", []string{`config: registrar.domains: empty`}},
	}
	for _, tt := range tests {
		_, _, err := Check([]byte(tt.toml+oneBackend), tt.name, nil)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tt.want) {
			t.Errorf("%s: %d problems, want %d:\n%v", tt.name, len(lines), len(tt.want), err)
			continue
		}
		for i, w := range tt.want {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("%s: problem %d\n  %s\nwant prefix\n  %s", tt.name, i, lines[i], w)
			}
		}
	}
	c, _, err := Check([]byte("[registrar]\nenabled = true\nroles = [\"location\"]\ndomains = [\"Example.com\"]\n"+oneBackend), "ok", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Registrar.HasRole("location") || c.Registrar.HasRole("registrar") {
		t.Fatalf("roles %v", c.Registrar.Roles)
	}
}

package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestGuardErrors(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"sizes", "[guard]\nmax_message_size = 100\nmax_headers = 500\nmax_vias = 1", []string{
			`config: guard.max_message_size=100: want 512 to 65535 bytes`,
			`config: guard.max_headers=500: want 10 to 128`,
			`config: guard.max_vias=1: want 2 to 64`}},
		{"rates", "[guard]\nrate = 0\nburst = 0\ninvite_rate = 300\nregister_burst = -1", []string{
			`config: guard.rate=0: want 1 to 1000000`,
			`config: guard.burst=0: want 1 to 1048576`,
			`config: guard.register_burst=-1: want 1 to 1048576`,
			`config: guard.invite_rate=300: above guard.rate (0)`,
			`config: guard.register_rate=10: above guard.rate (0)`}},
		{"action", "[guard]\nover_limit = \"tarpit\"", []string{`config: guard.over_limit "tarpit": want "reject"`}},
		{"durations", "[guard]\nretry_after = \"1500ms\"\nban_after = \"-1s\"\nban_ttl = \"0s\"\nauth_window = \"0s\"", []string{
			`config: guard.retry_after=1.5s: want whole seconds`,
			`config: guard.ban_after=-1s: want 0s`,
			`config: guard.ban_ttl=0s: want 1s to 720h`,
			`config: guard.auth_window=0s: want 1s to 24h`}},
		{"signatures", "[guard]\nuser_agents = [\"ok\", \" \"]\nfrom_to = [\"\"]", []string{
			`config: guard.user_agents[1] " ": want 1 to 128 characters`,
			`config: guard.from_to[0] "": want 1 to 128 characters`}},
		{"allow", "[guard]\nallow = [\"10.0.0.0/8\", \"2001:db8::1\", \"10.0.0.0/33\", \"trunk.example.com\"]", []string{
			`config: guard.allow[2] "10.0.0.0/33": want a CIDR`,
			`config: guard.allow[3] "trunk.example.com": want a CIDR`}},
		{"tables", "[guard]\ntable_size = 10\nmax_bans = 0\noverload_batches = 0\noverload_fill = 101\nauth_failures = 0", []string{
			`config: guard.auth_failures=0: want 1 to 10000`,
			`config: guard.table_size=10: want 1024`,
			`config: guard.max_bans=0: want 16`,
			`config: guard.overload_batches=0: want 1`,
			`config: guard.overload_fill=101: want a percentage`}},
	}
	for _, tt := range tests {
		_, _, err := Check([]byte(tt.toml+oneBackend), tt.name, nil)
		wantProblems(t, tt.name, err, tt.want)
	}
}

func TestGuardRoundTripAndAllow(t *testing.T) {
	in := "[guard]\nenabled = false\nrate = 50\nburst = 60\ninvite_rate = 5\ninvite_burst = 6\nregister_rate = 1\nregister_burst = 2\n" +
		"over_limit = \"drop\"\nban_after = \"0s\"\nban_ttl = \"1h\"\nuser_agents = [\"evil\"]\nfrom_to = []\n" +
		"allow = [\"192.0.2.0/24\", \"2001:db8::10\"]\nallow_backends = false\ntable_size = 4096\nmax_bans = 64\n" + oneBackend
	c, _, err := Check([]byte(in), "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Guard.Enabled || c.Guard.OverLimit != "drop" || len(c.Guard.FromTo) != 0 || c.Guard.UserAgents[0] != "evil" {
		t.Fatalf("decoded %+v", c.Guard)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::10/128")}
	if got := c.Guard.AllowPrefixes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllowPrefixes = %v, want %v", got, want)
	}
	var b strings.Builder
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	c2, _, err := Parse([]byte(b.String()), "written")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Guard, c2.Guard) {
		t.Fatalf("round trip changed [guard]:\n%+v\n%+v", c.Guard, c2.Guard)
	}
}

package config

import "testing"

func TestMediaErrors(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"off ignores the rest", "[media]\nenabled = false\nanchor = \"x\"\nrelays = []", nil},
		{"relays", "[media]\nenabled = true\nrelays = [{ address = \"rtp example.com:2223\" }, { address = \"127.0.0.1:2223\", weight = 0 }, { address = \"127.0.0.1:2223\", priority = 65536 }, { address = \"sips:relays.example.com\" }]", []string{
			`config: media.relays[0].address "rtp example.com:2223": want an IP, host:port, a domain or a sip: URI`,
			`config: media.relays[1].weight=0: want 1 to 1000`,
			`config: media.relays[2].address "127.0.0.1:2223": already listed as media.relays[1]`,
			`config: media.relays[2].priority=65536: want 0 to 65535`,
			`config: media.relays[3].address "sips:relays.example.com": sips needs TLS`}},
		{"no relays", "[media]\nenabled = true\nrelays = []", []string{`config: media.relays: empty`}},
		{"anchor", "[media]\nenabled = true\nanchor = \"sources\"\nsources = [\"10.0.0.0/33\"]", []string{
			`config: media.sources[0] "10.0.0.0/33": want a CIDR`}},
		{"anchor empty", "[media]\nenabled = true\nanchor = \"sources\"", []string{`config: media.sources: empty with anchor = "sources"`}},
		{"timing", "[media]\nenabled = true\ndeadline = \"0s\"\nretransmit = \"1s\"\nfallback = \"drop\"\nretry_after = \"0s\"", []string{
			`config: media.deadline=0s: want 1ms to 10s`,
			`config: media.retransmit=1s: want a positive duration not longer than media.deadline`,
			`config: media.fallback "drop": want "reject"`,
			`config: media.retry_after=0s: want whole seconds`}},
		{"sizes", "[media]\nenabled = true\nhelpers = 0\njobs = 4\ndelete_delay = -2\nlocal_address = \"eth0\"", []string{
			`config: media.helpers=0: want 1 to 64`,
			`config: media.jobs=4: want 8 to 65536`,
			`config: media.delete_delay=-2: want -1`,
			`config: media.local_address "eth0": want an IP address`}},
		{"flags", "[media]\nenabled = true\nreplace = [\"everything\"]\nice = \"maybe\"\ntransport_protocol = \"TCP\"\ndirection = [\"pub\"]\nflags = [\"a b\"]", []string{
			`config: media.replace[0] "everything": want one of origin`,
			`config: media.ice "maybe": want ""`,
			`config: media.transport_protocol "TCP": want ""`,
			`config: media.direction: has 1 names`,
			`config: media.flags[0] "a b": want an ng flag`}},
		{"ping", "[media]\nenabled = true\n[media.ping]\ninterval = \"1s\"\ntimeout = \"2s\"\ndown_after = 0\nup_after = 101", []string{
			`config: media.ping.timeout=2s: want a positive duration not longer than media.ping.interval`,
			`config: media.ping.down_after=0: want 1 to 100`,
			`config: media.ping.up_after=101: want 1 to 100`}},
	}
	for _, tt := range tests {
		_, _, err := Check([]byte(tt.toml+oneBackend), tt.name, nil)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		wantProblems(t, tt.name, err, tt.want)
	}
	c, _, err := Check([]byte("[media]\nenabled = true\nrelays = [{ address = \"127.0.0.1:2223\" }, { address = \"[::1]:2224\", weight = 3 }, { address = \"relays.example.com\", priority = 10 }, { address = \"rtp.example.com:2230\" }, { address = \"sip:relays.example.net\" }, { address = \"_ng._udp.example.org\" }]"+oneBackend), "ok", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Media.Relays; len(r) != 6 || r[0].W() != 1 || r[1].W() != 3 || r[2].Priority != 10 {
		t.Errorf("relays %+v: want weights 1 (left out) and 3, priority 10", r)
	}
}

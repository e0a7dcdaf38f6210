package config

import (
	"strings"
	"testing"
)

func TestDrainErrors(t *testing.T) {
	for _, tt := range []struct{ toml, want string }{
		{"answer = 404", `config: drain.answer=404: want 503 (Retry-After), 302 (Moved Temporarily) or 305 (Use Proxy) to drain.peer`},
		{"answer = 302", `config: drain.peer "": answer 302 sends callers to a peer: give its SIP URI`},
		{"answer = 305\npeer = \"192.0.2.7:5060\"", `config: drain.peer "192.0.2.7:5060": answer 305 sends callers to a peer`},
		{"retry_after = \"1500ms\"", `config: drain.retry_after=1.5s: want whole seconds from 1s to 1h0m0s`},
		{"idle = \"10ms\"", `config: drain.idle=10ms: want 100ms to 10m`},
		{"idle = \"5s\"\ntimeout = \"2s\"", `config: drain.timeout=2s: want from drain.idle (5s) to 24h`},
		{"on_sigterm = \"-1s\"", `config: drain.on_sigterm=-1s: want 0 (stop at once) to 1h`},
	} {
		_, _, err := Check([]byte("[drain]\n"+tt.toml+oneBackend), "test.toml", twoCPUs)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.toml, err, tt.want)
		}
	}
	c, _, err := Check([]byte("[drain]\nanswer = 302\npeer = \"sip:192.0.2.7:5060\"\non_sigterm = \"0s\""+oneBackend), "test.toml", twoCPUs)
	if err != nil || c.Drain.Answer != 302 || c.Drain.OnSigterm != 0 {
		t.Errorf("a valid [drain]: %v %+v", err, c)
	}
}

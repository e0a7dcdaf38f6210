package config

import (
	"bytes"
	"strings"
	"testing"

	"sipedge"
)

// FuzzCheck feeds arbitrary bytes to Check: it must never panic, must
// return either a config or an error, and any config it accepts must print
// as TOML that is accepted again.
func FuzzCheck(f *testing.F) {
	f.Add(sipedge.DefaultConfig)
	f.Add([]byte("[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [0, 3]\ncores = [0, 1]" + oneBackend))
	f.Add([]byte("[dispatcher]\nbackends = [{ address = \"a:1\", weight = 2 }, { address = \"b:2\" }]\n[dispatcher.probe]\ninterval = \"1s\"\ntimeout = \"2s\""))
	f.Add([]byte("x = 1\n[auth]\ny = 2\n[io]\nBatch = \"3\"\npoll_interval = 5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Check(data, "fuzz.toml", twoCPUs)
		if (c == nil) == (err == nil) {
			t.Fatalf("Check returned config %v and error %v: want exactly one", c != nil, err)
		}
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "config: ") {
					t.Fatalf("error line %q does not say it comes from the config", l)
				}
			}
			return
		}
		var buf bytes.Buffer
		if err := c.WriteTOML(&buf); err != nil {
			t.Fatalf("WriteTOML: %v", err)
		}
		if _, _, err := Check(buf.Bytes(), "written", twoCPUs); err != nil {
			t.Fatalf("accepted config prints as a rejected one: %v\n%s", err, buf.String())
		}
	})
}

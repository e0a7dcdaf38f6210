package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sipedge/appliance/config"
)

// unit renders CPUAffinity from the configuration's [io] cores.
func TestUnitFromConfig(t *testing.T) {
	cpus, err := config.Host().CPUs()
	if err != nil || len(cpus) < 2 {
		t.Skipf("needs two CPUs (have %v, %v)", cpus, err)
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	toml := "[io]\ncores = [" + itoa(cpus[1]) + ", " + itoa(cpus[0]) + "]\n[[dispatcher.backends]]\naddress = \"127.0.0.1:5080\"\n"
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"unit", "-c", path, "-bin", "/opt/sipedge/bin/sipedge"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "CPUAffinity=" + itoa(cpus[1]) + " " + itoa(cpus[0]) + "\n"
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "ExecStart=/opt/sipedge/bin/sipedge run -c /etc/sipedge/config.toml\n") {
		t.Errorf("unit lacks %q or the ExecStart asked for:\n%s", want, out.String())
	}
	if code := run([]string{"unit", "-bin", "relative"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "absolute") {
		t.Errorf("relative -bin: exit %d, stderr %q; want 1 and why", code, errb.String())
	}
}

func TestHelpIsAManual(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"NAME\n", "\nSYNOPSIS\n", "\nCOMMANDS\n", "\nFILES\n", "\nSIGNALS\n", "\nPRIVILEGES\n", "\nEXIT STATUS\n", "sipedge tune"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help lacks %q", s)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

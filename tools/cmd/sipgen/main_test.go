package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sipedge/tools/sipgen"
)

func TestWritesCaptureAndUsers(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "g.pcap")
	var so, se bytes.Buffer
	args := []string{"-o", out, "--calls", "5", "--registers", "3", "--options", "1", "--callers", "7", "--ipv6", "--responses"}
	if code := run(args, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	f, err := os.Open(out + ".users")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	users, err := sipgen.ReadUsers(f)
	if err != nil || len(users) != 7 {
		t.Fatalf("%d users, %v", len(users), err)
	}
	a, _ := os.ReadFile(out)
	if code := run(append(args, "-o", out+"2"), &so, &se); code != 0 {
		t.Fatal(se.String())
	}
	b, _ := os.ReadFile(out + "2")
	if len(a) < 1000 || !bytes.Equal(a, b) {
		t.Fatalf("two runs with the same flags differ (or are empty: %d bytes)", len(a))
	}
}

func TestUsageAndErrors(t *testing.T) {
	var so, se bytes.Buffer
	if code := run([]string{"-h"}, &so, &se); code != 0 || !strings.Contains(se.String(), "sipcore.BuildForward") {
		t.Fatalf("-h: exit %d, help does not explain the proxy model", code)
	}
	for _, args := range [][]string{{}, {"-o", "x", "--proxy", "nope"}, {"-o", "x", "--secret", "short"}, {"-o", "x", "--flows", "10", "--mix", "a=1"}} {
		se.Reset()
		if code := run(args, &so, &se); code != 2 || se.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, se.String())
		}
	}
}

package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sipedge/pipeline/stages/auth"
	"sipedge/sipcore"
)

func TestAddReplaceDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	os.WriteFile(path, []byte("# mine\nbob example.com "+sipcore.HA1(sipcore.AlgMD5, "bob", "example.com", "b")+" -\n"), 0o600)
	for _, pw := range []string{"one", "two"} {
		if err := run([]string{"-f", path, "-realm", "example.com", "-user", "alice", "-password", pw}, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := auth.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e := fs.Peek([]byte("example.com"), []byte("alice"))
	if fs.Len() != 2 || e == nil || string(e.HA1(sipcore.AlgSHA256)) != sipcore.HA1(sipcore.AlgSHA256, "alice", "example.com", "two") {
		t.Fatalf("after add and replace: %d users, alice %v", fs.Len(), e)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# mine\n") || strings.Count(string(data), "alice") != 1 || strings.Contains(string(data), "two") {
		t.Errorf("file not kept as it was, or password written:\n%s", data)
	}
	// A password from a pipe.
	r, w, _ := os.Pipe()
	w.WriteString("three\n")
	w.Close()
	if err := run([]string{"-f", path, "-realm", "example.com", "-user", "carol"}, r, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-f", path, "-realm", "example.com", "-user", "alice", "-delete"}, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := fs.Reload(); err != nil {
		t.Fatal(err)
	}
	if fs.Peek([]byte("example.com"), []byte("alice")) != nil || fs.Peek([]byte("example.com"), []byte("carol")) == nil {
		t.Errorf("delete or stdin add did not take")
	}
	for _, bad := range [][]string{
		{"-f", path, "-realm", "example.com"},
		{"-f", path, "-realm", "example.com", "-user", "a b", "-password", "x"},
		{"-realm", "example.com", "-user", "a", "-password", "x"},
		{"-f", path, "-realm", "example.com", "-user", "nobody", "-delete"},
	} {
		if err := run(bad, nil, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	var out strings.Builder
	if err := run([]string{"-redis", "-realm", "example.com", "-user", "alice", "-password", "x"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "HSET sipedge:user:example.com:alice ha1md5 "+sipcore.HA1(sipcore.AlgMD5, "alice", "example.com", "x")) {
		t.Errorf("redis command %q", out.String())
	}
}

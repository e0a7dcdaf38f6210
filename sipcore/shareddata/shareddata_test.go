package shareddata

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree makes <tmp>/repo (module sipedge) with a nested module repo/bench,
// and <tmp>/shared/pcaps beside it.
func tree(t *testing.T) (tmp string) {
	tmp = t.TempDir()
	for path, body := range map[string]string{
		"repo/go.mod":             "// the main module\nmodule sipedge\n\ngo 1.26\n",
		"repo/bench/go.mod":       "module sipedge/bench\n",
		"repo/bench/e2e/x.go":     "package e2e\n",
		"repo/pipeline/port/p.go": "package port\n",
		"shared/pcaps/a.pcap":     "",
	} {
		p := filepath.Join(tmp, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tmp
}

func TestFindWalksUpToTheMainModule(t *testing.T) {
	tmp := tree(t)
	t.Setenv(Env, "")
	for _, wd := range []string{"repo", "repo/pipeline/port", "repo/bench", "repo/bench/e2e"} {
		t.Chdir(filepath.Join(tmp, wd))
		dir, err := Find()
		if err != nil || dir != filepath.Join(tmp, "shared") {
			t.Fatalf("from %s: Find = %q, %v; want %s", wd, dir, err, filepath.Join(tmp, "shared"))
		}
	}
	// Outside any sipedge module: a clear error, not a guess.
	t.Chdir(tmp)
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), Env) {
		t.Fatalf("outside the repository: %v; want an error naming %s", err, Env)
	}
	// The repository without shared data beside it.
	if err := os.RemoveAll(filepath.Join(tmp, "shared")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(tmp, "repo"))
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), filepath.Join(tmp, "shared")) {
		t.Fatalf("no shared directory: %v; want an error naming where it looked", err)
	}
}

func TestEnvFirst(t *testing.T) {
	tmp := tree(t)
	t.Chdir(filepath.Join(tmp, "repo"))
	other := t.TempDir()
	t.Setenv(Env, other)
	if dir, err := Find(); err != nil || dir != other {
		t.Fatalf("Find with %s=%s: %q, %v", Env, other, dir, err)
	}
	t.Setenv(Env, filepath.Join(other, "missing"))
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Find with a missing %s: %v", Env, err)
	}
}

// fakeTB records how Dir ended a test; Fatalf and Skipf stop Dir the way
// the real ones stop a test (by unwinding).
type fakeTB struct {
	testing.TB
	how, msg string
}

type stopped struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.how, f.msg = "fatal", fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.how, f.msg = "skip", fmt.Sprintf(format, args...)
	panic(stopped{})
}

func dirWith(sub string) (got string, f *fakeTB) {
	f = &fakeTB{}
	defer func() {
		if r := recover(); r != nil && r != (stopped{}) {
			panic(r)
		}
	}()
	return Dir(f, sub), f
}

func TestDir(t *testing.T) {
	tmp := tree(t)
	t.Chdir(filepath.Join(tmp, "repo", "pipeline"))
	t.Setenv(Env, "")
	t.Setenv("CI", "true")
	if got, f := dirWith("pcaps"); got != filepath.Join(tmp, "shared", "pcaps") || f.how != "" {
		t.Fatalf("Dir(pcaps) = %q (%s %s)", got, f.how, f.msg)
	}
	want := filepath.Join(tmp, "shared", "conformance")
	if _, f := dirWith("conformance"); f.how != "fatal" || !strings.Contains(f.msg, want) {
		t.Fatalf("absent data under CI=true: %s %q; want a failure naming %s", f.how, f.msg, want)
	}
	t.Setenv("CI", "")
	if _, f := dirWith("conformance"); f.how != "skip" || !strings.Contains(f.msg, want) {
		t.Fatalf("absent data outside CI: %s %q; want a skip naming %s", f.how, f.msg, want)
	}
}

func TestModulePath(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"module sipedge\n":                   "sipedge",
		"\n  module \"sipedge\" // quoted\n": "sipedge",
		"module sipedge/bench\n":             "sipedge/bench",
		"modulex sipedge\n":                  "",
		"go 1.26\n":                          "",
	} {
		p := filepath.Join(dir, "go.mod")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := modulePath(p); got != want {
			t.Fatalf("go.mod %q: module %q, want %q", body, got, want)
		}
	}
	if got := modulePath(filepath.Join(dir, "none")); got != "" {
		t.Fatalf("no go.mod: %q", got)
	}
}

// TestThisRepository finds the real shared data from this package (a
// skip outside CI when the checkout has none beside it).
func TestThisRepository(t *testing.T) {
	dir := Dir(t, "")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

package shareddata

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Env is the environment variable that, when set, names the shared data
// directory and overrides the lookup beside the repository.
const Env = "SIPEDGE_SHARED"

// module is the main module's path; its go.mod marks the repository root.
const module = "sipedge"

// Find returns the shared data directory: $SIPEDGE_SHARED when set, else
// <repo root>/../shared. The error says where it looked and how to point it
// elsewhere; the directory exists when the error is nil.
func Find() (string, error) {
	if dir := os.Getenv(Env); dir != "" {
		if err := isDir(dir); err != nil {
			return "", fmt.Errorf("shared data: %s=%s: %w (point it at the shared directory)", Env, dir, err)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("shared data: working directory: %w (set %s to the shared directory)", err, Env)
	}
	root, err := repoRoot(wd)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(filepath.Dir(root), "shared")
	if err := isDir(dir); err != nil {
		return "", fmt.Errorf("shared data: %w (expected beside the repository at %s; set %s to the shared directory)", err, dir, Env)
	}
	return dir, nil
}

// Dir returns the path of sub inside the shared data directory (sub may be
// "" for the directory itself). When it is absent, the test fails under
// CI=true (CI must run every test) and is skipped otherwise; either way the
// message names the path looked for.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := Find()
	if err == nil {
		p := filepath.Join(dir, sub)
		if err = isDir(p); err == nil {
			return p
		}
		err = fmt.Errorf("shared data: %w (set %s to the shared directory)", err, Env)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v", err)
	}
	t.Skipf("%v; this test needs it, skipped", err)
	return ""
}

// repoRoot walks up from dir to the folder whose go.mod declares module
// sipedge, passing nested modules (bench) by.
func repoRoot(dir string) (string, error) {
	start := dir
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == module {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("shared data: no go.mod of module %s in %s or above (run from inside the repository, or set %s to the shared directory)", module, start, Env)
		}
		dir = up
	}
}

// modulePath is the module path a go.mod declares, "" when there is none.
func modulePath(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			rest, _, _ = strings.Cut(rest, "//")
			return strings.Trim(strings.TrimSpace(rest), `"`+"`")
		}
	}
	return ""
}

func isDir(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		abs, aerr := filepath.Abs(p)
		if aerr != nil {
			abs = p
		}
		return fmt.Errorf("%s not found (%v)", abs, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", p)
	}
	return nil
}

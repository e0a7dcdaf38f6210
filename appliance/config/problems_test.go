package config

import (
	"strings"
	"testing"
)

// wantProblems checks that err lists exactly the problems want, in
// order, each line starting with its entry.
func wantProblems(t *testing.T, name string, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("%s: %d problems, want %d:\n%v", name, len(lines), len(want), err)
		return
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("%s: problem %d\n  %s\nwant prefix\n  %s", name, i, lines[i], w)
		}
	}
}

package parsecmp

import (
	"strings"
	"testing"
)

// TestCheckMode keeps the comparison from rotting: both parsers accept every
// benchmark message and a short run yields a row per parser and message.
func TestCheckMode(t *testing.T) {
	msgs, err := Load("../../sipcore/testdata/bench")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(msgs); err != nil {
		t.Fatal(err)
	}
	rs := make([]Result, 0, 2*len(msgs))
	for _, m := range msgs {
		rs = append(rs, Result{Message: m.Name, Parser: "sipcore", NsPerMsg: 1}, Result{Message: m.Name, Parser: "sipgo", NsPerMsg: 10})
	}
	var sb strings.Builder
	WriteTable(&sb, rs)
	if got := strings.Count(sb.String(), "\n"); got != 2+len(rs) {
		t.Fatalf("table has %d lines, want %d:\n%s", got, 2+len(rs), sb.String())
	}
	if !strings.Contains(sb.String(), "10.0x") {
		t.Fatalf("table lacks the speed-up column:\n%s", sb.String())
	}
}

package main

import "testing"

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.0":        "1.2.0",
		"v1.2.0-3-gabc": "1.2.0+3+gabc",
		"53f491e-dirty": "0~git53f491e.dirty",
		"26d2843":       "0~git26d2843",
		"dev":           "0~gitdev",
	} {
		if got := debVersion(in); got != want {
			t.Errorf("debVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

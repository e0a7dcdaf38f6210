package config

import (
	"io"
	"testing"

	"sipedge"
)

// BenchmarkCheckDefault measures a full load of the embedded default:
// parse, defaults, unknown-key scan and validation. It runs at start and on
// reload, never per packet; the figure shows a reload costs next to nothing.
func BenchmarkCheckDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Check(sipedge.DefaultConfig, "config.toml", twoCPUs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteTOML measures printing the effective configuration.
func BenchmarkWriteTOML(b *testing.B) {
	c, _, err := Parse(sipedge.DefaultConfig, "config.toml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteTOML(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

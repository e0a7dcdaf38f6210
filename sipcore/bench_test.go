package sipcore

import "testing"

func benchParse(b *testing.B, msg []byte) {
	buf := append([]byte(nil), msg...)
	var m Msg
	if err := Parse(buf, &m); err != nil {
		b.Fatalf("fixture does not parse: %v", err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Parse(buf, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseINVITE parses fixtureINVITE: the request side of the hot path.
func BenchmarkParseINVITE(b *testing.B) { benchParse(b, fixtureINVITE) }

// BenchmarkParse200OK parses fixture200OK: the response side of the hot path.
func BenchmarkParse200OK(b *testing.B) { benchParse(b, fixture200OK) }

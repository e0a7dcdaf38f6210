package parsecmp

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/emiago/sipgo/sip"

	"sipedge/sipcore"
)

// Message is one benchmark input.
type Message struct {
	Name string
	Data []byte
}

// Load reads every *.sip file of dir (sipcore/testdata/bench).
func Load(dir string) ([]Message, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sip"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("parsecmp: no *.sip messages in %s: run from the bench folder of a sipedge checkout", dir)
	}
	sort.Strings(files)
	var out []Message
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, Message{Name: filepath.Base(f), Data: b})
	}
	return out, nil
}

// Result is one parser on one message.
type Result struct {
	Message  string
	Bytes    int
	Parser   string
	NsPerMsg float64
	BPerMsg  int64
	Allocs   int64
}

// Check parses every message with both parsers once and reports the first
// failure: a benchmark of a parser that rejects its input means nothing.
func Check(msgs []Message) error {
	p := sip.NewParser()
	var m sipcore.Msg
	for _, msg := range msgs {
		buf := append([]byte(nil), msg.Data...)
		if err := sipcore.Parse(buf, &m); err != nil {
			return fmt.Errorf("parsecmp: sipcore rejects %s: %v", msg.Name, err)
		}
		if _, err := p.ParseSIP(msg.Data); err != nil {
			return fmt.Errorf("parsecmp: sipgo rejects %s: %v", msg.Name, err)
		}
	}
	return nil
}

// Run benchmarks both parsers on every message.
func Run(msgs []Message) []Result {
	var out []Result
	for _, msg := range msgs {
		data := msg.Data
		buf := make([]byte, len(data))
		copy(buf, data)
		var m sipcore.Msg
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if err := sipcore.Parse(buf, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
		out = append(out, result(msg, "sipcore", r))
		p := sip.NewParser()
		r = testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if _, err := p.ParseSIP(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		out = append(out, result(msg, "sipgo v1.7.3", r))
	}
	return out
}

func result(msg Message, parser string, r testing.BenchmarkResult) Result {
	return Result{
		Message: msg.Name, Bytes: len(msg.Data), Parser: parser,
		NsPerMsg: float64(r.T.Nanoseconds()) / float64(max(r.N, 1)),
		BPerMsg:  r.AllocedBytesPerOp(), Allocs: r.AllocsPerOp(),
	}
}

// WriteTable prints the results as a markdown table, sipcore and sipgo on
// adjacent rows with the speed-up.
func WriteTable(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| message | bytes | parser | ns/msg | B/msg | allocs/msg | sipgo/sipcore |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|")
	for i, r := range rs {
		ratio := ""
		if i%2 == 1 && rs[i-1].NsPerMsg > 0 {
			ratio = fmt.Sprintf("%.1fx", r.NsPerMsg/rs[i-1].NsPerMsg)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %d | %d | %s |\n", r.Message, r.Bytes, r.Parser, r.NsPerMsg, r.BPerMsg, r.Allocs, ratio)
	}
}

package sipcore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The parser was rewritten for speed; parse_ref_test.go keeps the slower
// parser it replaced, renamed with a ref prefix. These tests parse the same
// bytes with both and require identical results: the same error kind and
// offset, the same rewritten buffer (folding), and on success every field
// of Msg up to its counts. A difference is either a bug in the fast parser
// or a deliberate change that must be argued for and the reference updated.

// diffMsgs are reused: a fresh Msg per input would dominate the test's time.
var diffMsgs [2]Msg

// diffParse parses data with both parsers and reports the first difference.
func diffParse(t testing.TB, data []byte) {
	t.Helper()
	b1 := append([]byte(nil), data...)
	b2 := append([]byte(nil), data...)
	m1, m2 := &diffMsgs[0], &diffMsgs[1]
	e1 := Parse(b1, m1)
	e2 := refParse(b2, m2)
	if (e1 == nil) != (e2 == nil) {
		t.Fatalf("fast err %v, reference err %v\ninput %q", e1, e2, data)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("buffers differ after Parse\nfast %q\nref  %q", b1, b2)
	}
	if e1 != nil {
		p1, p2 := e1.(*ParseError), e2.(*ParseError)
		if p1.Kind != p2.Kind || p1.Offset != p2.Offset {
			t.Fatalf("fast err %v (offset %d), reference err %v (offset %d)\ninput %q",
				e1, p1.Offset, e2, p2.Offset, data)
		}
		return
	}
	if !sameMsg(m1, m2) {
		t.Fatalf("Msg differs\nfast %s\nref  %s\ninput %q", diffFields(m1, m2), diffFields(m2, m1), data)
	}
}

// sameMsg compares what Parse promises: every exported field, and the
// array entries up to their counts (entries past a count are undefined).
func sameMsg(a, b *Msg) bool {
	if a.NHeaders != b.NHeaders || a.NVia != b.NVia || a.NContact != b.NContact ||
		a.NRoute != b.NRoute || a.NRecordRoute != b.NRecordRoute || a.seen != b.seen {
		return false
	}
	for i := 0; i < a.NHeaders; i++ {
		if a.Headers[i] != b.Headers[i] {
			return false
		}
	}
	for i := 0; i < a.NVia; i++ {
		if a.Vias[i] != b.Vias[i] {
			return false
		}
	}
	for i := 0; i < a.NContact; i++ {
		if a.Contacts[i] != b.Contacts[i] {
			return false
		}
	}
	for i := 0; i < a.NRoute; i++ {
		if a.Routes[i] != b.Routes[i] {
			return false
		}
	}
	for i := 0; i < a.NRecordRoute; i++ {
		if a.RecordRoutes[i] != b.RecordRoutes[i] {
			return false
		}
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for _, i := range msgScalarFields {
		if !va.Field(i).Equal(vb.Field(i)) {
			return false
		}
	}
	return true
}

// msgScalarFields indexes Msg's exported fields that are not arrays.
var msgScalarFields = func() (idx []int) {
	t := reflect.TypeOf(Msg{})
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && f.Type.Kind() != reflect.Array {
			idx = append(idx, i)
		}
	}
	return idx
}()

// diffFields names the fields of a that differ from b, for a readable failure.
func diffFields(a, b *Msg) string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var s []string
	for i := 0; i < va.NumField(); i++ {
		f, x, y := va.Type().Field(i), va.Field(i), vb.Field(i)
		if !f.IsExported() || reflect.DeepEqual(x.Interface(), y.Interface()) {
			continue
		}
		if x.Kind() == reflect.Array {
			for j := 0; j < x.Len(); j++ {
				if !reflect.DeepEqual(x.Index(j).Interface(), y.Index(j).Interface()) {
					s = append(s, fmt.Sprintf("%s[%d]=%+v", f.Name, j, x.Index(j).Interface()))
				}
			}
			continue
		}
		s = append(s, fmt.Sprintf("%s=%+v", f.Name, x.Interface()))
	}
	return strings.Join(s, " ")
}

// diffCorpus gathers every message the package's tests know: the fixtures,
// the benchmark files, the RFC 4475/5118 torture messages, the seed fuzz
// corpus and the SIP datagrams of the shared captures.
func diffCorpus(t *testing.T) [][]byte {
	out := [][]byte{fixtureINVITE, fixture200OK}
	bench, _ := filepath.Glob(filepath.Join("testdata", "bench", "*.sip"))
	for _, p := range bench {
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, b)
		}
	}
	fz, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	for _, p := range fz {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		_, lit, ok := strings.Cut(string(b), "[]byte(")
		if !ok {
			continue
		}
		if s, err := strconv.Unquote(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(lit), ")"))); err == nil {
			out = append(out, []byte(s))
		}
	}
	conf := sharedDir(t, "conformance")
	for _, sub := range []string{"rfc4475", "rfc5118"} {
		files, _ := filepath.Glob(filepath.Join(conf, sub, "*.dat"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				out = append(out, b)
			}
		}
	}
	caps, _ := filepath.Glob(filepath.Join(sharedDir(t, "pcaps"), "*.pcap*"))
	for _, p := range caps {
		forEachUDPPayload(t, p, func(b []byte) {
			if looksLikeSIP(b) {
				out = append(out, append([]byte(nil), b...))
			}
		})
	}
	return out
}

// TestParseMatchesReference runs every known message, and systematic
// damage to each (every truncation, and every byte replaced by each of a
// set of bytes that matter to the grammar), through both parsers.
func TestParseMatchesReference(t *testing.T) {
	corpus := diffCorpus(t)
	if len(corpus) < 50 {
		t.Fatalf("only %d messages in the differential corpus", len(corpus))
	}
	subst := []byte{0, '\t', '\n', '\r', ' ', '"', '%', ',', ':', ';', '<', '=', '>', '@', '[', ']', '\\', '/', '.', '-', 'A', 'z', '0', '9', 0x7f, 0x80, 0xff}
	for k, msg := range corpus {
		diffParse(t, msg)
		if testing.Short() {
			continue
		}
		// Every truncation, and the substitutions at one position in
		// three (a different third per message).
		n := min(len(msg), 1200)
		for i := 0; i < n; i++ {
			diffParse(t, msg[:i])
		}
		mut := append([]byte(nil), msg...)
		for i := k % 3; i < n; i += 3 {
			orig := mut[i]
			for _, c := range subst {
				mut[i] = c
				diffParse(t, mut)
			}
			mut[i] = orig
		}
	}
}

// FuzzParseReference is FuzzParse's twin for the rewrite: any input on which
// the fast parser and the reference disagree is a failure.
func FuzzParseReference(f *testing.F) {
	f.Add(fixtureINVITE)
	f.Add(fixture200OK)
	f.Fuzz(func(t *testing.T, data []byte) { diffParse(t, data) })
}

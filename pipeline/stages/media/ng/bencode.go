package ng

import (
	"errors"
	"strconv"
)

// Enc appends bencoded values to a caller's buffer. It never allocates
// while the buffer has room: callers give it a buffer sized for their
// largest request (append grows it otherwise, which is correct but slow).
type Enc struct{ B []byte }

// Reset empties the buffer and keeps its storage.
func (e *Enc) Reset(prefix []byte) { e.B = append(e.B[:0], prefix...) }

// Dict opens a dictionary; List opens a list; End closes the last one.
func (e *Enc) Dict() { e.B = append(e.B, 'd') }

// List opens a list.
func (e *Enc) List() { e.B = append(e.B, 'l') }

// End closes the innermost dictionary or list.
func (e *Enc) End() { e.B = append(e.B, 'e') }

// Bytes appends a byte string.
func (e *Enc) Bytes(b []byte) {
	e.B = strconv.AppendInt(e.B, int64(len(b)), 10)
	e.B = append(e.B, ':')
	e.B = append(e.B, b...)
}

// Str appends a byte string given as a string (no conversion allocates).
func (e *Enc) Str(s string) {
	e.B = strconv.AppendInt(e.B, int64(len(s)), 10)
	e.B = append(e.B, ':')
	e.B = append(e.B, s...)
}

// Int appends an integer.
func (e *Enc) Int(n int64) {
	e.B = append(e.B, 'i')
	e.B = strconv.AppendInt(e.B, n, 10)
	e.B = append(e.B, 'e')
}

// KV appends a dictionary entry whose value is a byte string.
func (e *Enc) KV(key string, val []byte) {
	e.Str(key)
	e.Bytes(val)
}

// KS appends a dictionary entry whose value is a string.
func (e *Enc) KS(key, val string) {
	e.Str(key)
	e.Str(val)
}

// KL appends a dictionary entry whose value is a list of strings.
func (e *Enc) KL(key string, vals []string) {
	e.Str(key)
	e.List()
	for _, v := range vals {
		e.Str(v)
	}
	e.End()
}

// Kind is the type of a decoded value.
type Kind uint8

// Kinds of values.
const (
	KString Kind = iota + 1
	KInt
	KList
	KDict
)

// Tok is one decoded value: a string's bytes or an integer's digits are
// Buf[Start:End]; a list or dictionary spans its elements, and Next is
// the index of the token after the whole value (its elements included),
// so that siblings are walked without recursion.
type Tok struct {
	Kind       Kind
	Start, End int
	Next       int
}

// Decoding errors.
var (
	ErrSyntax   = errors.New("ng: malformed bencode")
	ErrTooDeep  = errors.New("ng: bencode nested too deeply")
	ErrTooLarge = errors.New("ng: bencode has more values than the decoder holds")
	ErrTrailing = errors.New("ng: bytes after the bencoded value")
)

// MaxDepth bounds nesting: a hostile reply cannot exhaust the stack.
const MaxDepth = 32

// Decoded is a value decoded into a fixed token table: decoding allocates
// nothing, and the values are slices of the decoded buffer.
type Decoded struct {
	Buf  []byte
	Toks []Tok
	n    int
}

// NewDecoded returns a decoder holding up to max tokens.
func NewDecoded(max int) *Decoded { return &Decoded{Toks: make([]Tok, max)} }

// Decode decodes one bencoded value that fills b.
func (d *Decoded) Decode(b []byte) error {
	d.Buf, d.n = b, 0
	var stack [MaxDepth]int // the open containers' tokens
	var kids [MaxDepth]int  // how many direct elements each has so far
	depth := 0
	p := 0
	for {
		if p >= len(b) {
			return ErrSyntax
		}
		c := b[p]
		if c == 'e' {
			if depth == 0 {
				return ErrSyntax
			}
			depth--
			t := &d.Toks[stack[depth]]
			if t.Kind == KDict && kids[depth]%2 != 0 {
				return ErrSyntax // a key without a value
			}
			t.End, t.Next = p, d.n
			p++
		} else {
			if d.n == len(d.Toks) {
				return ErrTooLarge
			}
			if depth > 0 {
				if d.Toks[stack[depth-1]].Kind == KDict && kids[depth-1]%2 == 0 && (c < '0' || c > '9') {
					return ErrSyntax // dictionary keys are strings
				}
				kids[depth-1]++
			}
			t := &d.Toks[d.n]
			d.n++
			switch {
			case c == 'd' || c == 'l':
				if depth == MaxDepth {
					return ErrTooDeep
				}
				t.Kind = KList
				if c == 'd' {
					t.Kind = KDict
				}
				t.Start = p + 1
				stack[depth] = d.n - 1
				kids[depth] = 0
				depth++
				p++
			case c == 'i':
				q := p + 1
				if q < len(b) && b[q] == '-' {
					q++
				}
				s := q
				for q < len(b) && b[q] >= '0' && b[q] <= '9' {
					q++
				}
				if q == s || q >= len(b) || b[q] != 'e' || q-p > 21 ||
					(b[s] == '0' && (q-s > 1 || s > p+1)) { // canonical: no leading zeros, no -0
					return ErrSyntax
				}
				*t = Tok{Kind: KInt, Start: p + 1, End: q, Next: d.n}
				p = q + 1
			case c >= '0' && c <= '9':
				n, q := 0, p
				for q < len(b) && b[q] >= '0' && b[q] <= '9' {
					n = n*10 + int(b[q]-'0')
					q++
					if n > len(b) {
						return ErrSyntax
					}
				}
				if q >= len(b) || b[q] != ':' || n > len(b)-q-1 || (b[p] == '0' && q-p > 1) {
					return ErrSyntax
				}
				*t = Tok{Kind: KString, Start: q + 1, End: q + 1 + n, Next: d.n}
				p = q + 1 + n
			default:
				return ErrSyntax
			}
		}
		if depth == 0 {
			if p != len(b) {
				return ErrTrailing
			}
			return nil
		}
	}
}

// Len is how many tokens the last Decode produced.
func (d *Decoded) Len() int { return d.n }

// Bytes returns the bytes of token i (a string's contents, an integer's
// digits).
func (d *Decoded) Bytes(i int) []byte {
	t := &d.Toks[i]
	return d.Buf[t.Start:t.End]
}

// Int returns token i as an integer (0 when it is not one).
func (d *Decoded) Int(i int) int64 {
	if i < 0 || d.Toks[i].Kind != KInt {
		return 0
	}
	n, _ := strconv.ParseInt(string(d.Bytes(i)), 10, 64) // no allocation: the compiler elides the conversion
	return n
}

// Get returns the index of the value under key in dictionary token dict,
// or -1.
func (d *Decoded) Get(dict int, key string) int {
	if dict < 0 || dict >= d.n || d.Toks[dict].Kind != KDict {
		return -1
	}
	end := d.Toks[dict].Next
	for i := dict + 1; i < end; {
		k := i
		v := d.Toks[k].Next
		if v >= end {
			return -1
		}
		if string(d.Bytes(k)) == key {
			return v
		}
		i = d.Toks[v].Next
	}
	return -1
}

// Str returns the string value under key in dictionary dict, nil when it
// is absent or not a string.
func (d *Decoded) Str(dict int, key string) []byte {
	i := d.Get(dict, key)
	if i < 0 || d.Toks[i].Kind != KString {
		return nil
	}
	return d.Bytes(i)
}

// Elems calls fn with each element of list (or each key and value pair of
// dictionary) token i, in order, until fn returns false.
func (d *Decoded) Elems(i int, fn func(el int) bool) {
	if i < 0 || (d.Toks[i].Kind != KList && d.Toks[i].Kind != KDict) {
		return
	}
	end := d.Toks[i].Next
	for j := i + 1; j < end; j = d.Toks[j].Next {
		if !fn(j) {
			return
		}
	}
}

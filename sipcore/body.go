package sipcore

// BuildWithBody writes m into dst with its body replaced by body and its
// Content-Length (long or compact form, wherever it stands) set to
// len(body); a message without Content-Length gets one before the blank
// line. Every other byte goes through unchanged. It is how a rewritten
// SDP (the media relay's) replaces the one a message carried, without
// allocating: dst is the caller's per-core buffer. It returns the length
// written, or ErrNoRoom when dst is too small.
func BuildWithBody(dst []byte, m *Msg, body []byte) (int, error) {
	w := writer{b: dst}
	head := int(m.Body.Off) // just past the blank line
	if i := m.Next(HdrContentLength, 0); i >= 0 {
		v := m.Headers[i].Value
		w.put(m.buf[:v.Off])
		w.uint(uint64(len(body)))
		w.put(m.buf[v.End():head])
	} else {
		blank := 1 // the blank line: LF alone is accepted too
		if head >= 2 && m.buf[head-2] == '\r' {
			blank = 2
		}
		w.put(m.buf[:head-blank])
		w.str("Content-Length: ")
		w.uint(uint64(len(body)))
		w.str("\r\n")
		w.put(m.buf[head-blank : head])
	}
	w.put(body)
	if w.short {
		return 0, ErrNoRoom
	}
	return w.n, nil
}

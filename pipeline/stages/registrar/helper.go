package registrar

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

// request is one REGISTER on its way to the helper, copied whole into the
// queue (a buffered channel of values: sending allocates nothing).
type request struct {
	h   pipeline.Handle
	n   uint16
	buf [keyHead + maxRegister]byte
}

// helper is one worker's pipeline.Helper: Concurrency goroutines call the
// store and hand their answers back one at a time (answerMu: the worker's
// answer ring takes one producer at a time), with no goroutine in between.
type helper struct {
	r        *Registrar
	reqs     chan request
	answerMu sync.Mutex
}

func (r *Registrar) startHelper() *helper {
	h := &helper{r: r, reqs: make(chan request, r.cfg.QueueLen)}
	r.wg.Add(r.cfg.Concurrency)
	for i := 0; i < r.cfg.Concurrency; i++ {
		go h.storeLoop()
	}
	return h
}

// Request implements pipeline.Helper; it never blocks: with the queue
// full the REGISTER waits for its deadline and gets 503.
func (h *helper) Request(hd pipeline.Handle, key []byte) {
	select {
	case h.reqs <- makeRequest(hd, key):
	default:
		h.r.stats.QueueFull.Add(1)
	}
}

func makeRequest(hd pipeline.Handle, key []byte) (r request) {
	r.h = hd
	r.n = uint16(copy(r.buf[:], key))
	return r
}

func (h *helper) storeLoop() {
	r := h.r
	defer r.wg.Done()
	var m sipcore.Msg
	var ans pipeline.Answer
	for {
		var q request
		select {
		case q = <-h.reqs:
		case <-r.done:
			return
		}
		st, lines := r.register(&m, q.buf[:q.n])
		var slot uint32
		var seq uint64
		if st == ansOK {
			slot, seq = r.box.Put(lines)
		}
		encodeAnswer(&ans, st, slot, seq)
		h.answerMu.Lock()
		ok := q.h.Answer(&ans)
		h.answerMu.Unlock()
		if !ok {
			r.stats.RingFull.Add(1)
		}
	}
}

// register applies one REGISTER (key: source address, then the message)
// and returns the answer status and, for 200, the header lines listing
// the bindings.
func (r *Registrar) register(m *sipcore.Msg, key []byte) (int32, []byte) {
	if len(key) < keyHead {
		return ansBad, nil
	}
	src := getAddr(key)
	if sipcore.Parse(key[keyHead:], m) != nil {
		return ansBad, nil
	}
	if st, _ := r.check(m, nil); st != 0 {
		return ansBad, nil // the worker checked it: cannot happen
	}
	aor, _ := r.cfg.Domains.AppendAOR(nil, m.Buf(), &m.To.URI)
	now := r.cfg.Clock()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
	defer cancel()
	t0 := time.Now()
	var bs []bindings.Binding
	if !m.StarContact && m.NContact == 0 {
		// A fetch (RFC 3261 10.2.3): the bindings, nothing changed.
		var err error
		bs, err = r.cfg.Store.Lookup(ctx, string(aor))
		r.stats.Latency.Observe(time.Since(t0))
		if err != nil {
			r.stats.Errors.Add(1)
			return ansError, nil
		}
		r.stats.Fetches.Add(1)
		return ansOK, r.okLines(m, bs, now)
	}
	u := r.update(m, string(aor), src, now)
	res, err := r.cfg.Store.Apply(ctx, u)
	r.stats.Latency.Observe(time.Since(t0))
	if err != nil {
		r.stats.Errors.Add(1)
		return ansError, nil
	}
	switch res.Outcome {
	case bindings.OutOfOrder:
		return ansOutOfOrder, nil
	case bindings.TooMany:
		return ansTooMany, nil
	}
	r.flows.track(u.AOR, r.cfg.Self.String(), res.Bindings)
	r.stats.Written.Add(uint64(res.Written))
	r.stats.Refreshed.Add(uint64(res.Refreshed))
	r.stats.Removed.Add(uint64(res.Removed))
	r.stats.Evicted.Add(uint64(res.Evicted))
	r.stats.Expired.Add(uint64(res.Expired))
	return ansOK, r.okLines(m, res.Bindings, now)
}

// update turns a checked REGISTER into the store's Update.
func (r *Registrar) update(m *sipcore.Msg, aor string, src netip.AddrPort, now time.Time) *bindings.Update {
	u := &bindings.Update{
		AOR: aor, CallID: string(m.B(m.CallID)), CSeq: m.CSeq, Star: m.StarContact,
		MaxContacts: r.cfg.MaxContacts, EvictOldest: r.cfg.EvictOldest, Keep: r.cfg.Keep, Now: now,
	}
	if m.StarContact {
		return u
	}
	hexp, _ := m.ExpiresValue()
	path := pathOf(m)
	var cp sipcore.ContactParams
	for i := 0; i < m.NContact; i++ {
		ct := &m.Contacts[i]
		_ = m.ParseContactParams(ct.Params, &cp)
		exp, _ := r.grant(cp.Expires, hexp)
		b := bindings.Binding{
			Contact:  string(m.B(ct.URI.Raw)),
			Q:        1000,
			Path:     path,
			Received: src.String(),
			Node:     r.cfg.Self.String(),
			NAT:      !contactIs(m, &ct.URI, src),
			RegID:    max(cp.RegID, 0),
		}
		if cp.Q >= 0 {
			b.Q = cp.Q
		}
		b.ID = b.Contact
		if !cp.Instance.Empty() {
			b.Instance = string(m.B(cp.Instance))
			b.ID = b.Instance
			if b.RegID > 0 {
				b.ID += ";reg-id=" + strconv.FormatInt(b.RegID, 10)
			}
		}
		u.Changes = append(u.Changes, bindings.Change{Binding: b, Expires: exp})
	}
	return u
}

// contactIs reports whether the contact URI names exactly the address the
// REGISTER came from: otherwise the UA is behind NAT (or names a host the
// edge cannot resolve) and requests go to the source address.
func contactIs(m *sipcore.Msg, u *sipcore.URI, src netip.AddrPort) bool {
	if u.HostKind != sipcore.HostIPv4 && u.HostKind != sipcore.HostIPv6 {
		return false
	}
	ip, ok := sipcore.ParseIP(m.B(u.Host))
	if !ok {
		return false
	}
	port := uint16(5060)
	if u.HasPort {
		port = u.Port
	}
	return netip.AddrPortFrom(ip.Unmap(), port) == netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
}

// pathOf returns the Path values of the REGISTER (RFC 3327), in order.
func pathOf(m *sipcore.Msg) []string {
	var out []string
	for i := m.NextPath(0); i >= 0; i = m.NextPath(i + 1) {
		for _, v := range splitList(string(m.B(m.Headers[i].Value))) {
			out = append(out, v)
		}
	}
	return out
}

// splitList splits a header value at the commas outside <> and quotes.
func splitList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// okLines are the 200's extra header lines: one Contact per binding with
// its remaining expiry (RFC 3261 10.3 step 8), the request's Path when it
// had one (RFC 3327 5.3), and Date.
func (r *Registrar) okLines(m *sipcore.Msg, bs []bindings.Binding, now time.Time) []byte {
	var b []byte
	for i := range bs {
		bd := &bs[i]
		secs := int64((bd.Expires.Sub(now) + time.Second/2) / time.Second)
		if secs < 1 {
			secs = 1
		}
		b = append(b, "Contact: <"...)
		b = append(b, bd.Contact...)
		b = append(b, ">;expires="...)
		b = strconv.AppendInt(b, secs, 10)
		if bd.Q != 1000 {
			b = append(b, ";q=0."...)
			q := strconv.Itoa(1000 + bd.Q)[1:]
			b = append(b, strings.TrimRight(q, "0")...)
			if bd.Q%100 == 0 && bd.Q == 0 {
				b = append(b, '0')
			}
		}
		if bd.Instance != "" {
			b = append(b, ";+sip.instance=\""...)
			b = append(b, bd.Instance...)
			b = append(b, '"')
		}
		if bd.RegID > 0 {
			b = append(b, ";reg-id="...)
			b = strconv.AppendInt(b, bd.RegID, 10)
		}
		b = append(b, "\r\n"...)
	}
	for i := m.NextPath(0); i >= 0; i = m.NextPath(i + 1) {
		b = append(b, "Path: "...)
		b = append(b, m.B(m.Headers[i].Value)...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Date: "...)
	b = append(b, now.UTC().Format(http.TimeFormat)...)
	b = append(b, "\r\n"...)
	return b
}

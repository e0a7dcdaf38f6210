package media

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/media/ng"
)

// A job is one message's exchange with a relay, shared by the worker
// (which fills the request and reads the reply) and one helper goroutine
// (which does the I/O). The pair hand it over through word, which holds
// the job's generation and state together so that a late helper can
// never take over a job the worker has since reused (no ABA).
type job struct {
	word atomic.Uint64 // gen<<8 | state

	// Set by the worker before it hands the job over.
	op        uint8
	answered  bool  // a message is parked on it (offer, answer)
	newCall   bool  // an initial offer: counts a call on the relay
	reclaimAt int64 // worker clock after which an unconsumed job is freed
	parkedAt  int64 // worker clock when it was handed over
	relay     netip.AddrPort
	req       []byte // the ng dictionary, without cookie
	reqBuf    [reqMax]byte

	// Set by the helper before it marks the job done.
	status int32
	reply  []byte
	rbuf   [replyMax]byte
}

// Sizes of a job's buffers: an offer carries the whole SDP (a message
// larger than a park slot, 4096 bytes, is never parked anyway), a reply
// the relay's SDP.
const (
	reqMax   = 6144
	replyMax = 6144
)

// Job states.
const (
	jobFree    = 0
	jobQueued  = 1 // handed to a helper, not yet taken
	jobWorking = 2 // the helper has it
	jobDone    = 3 // the helper is finished with it
)

// Answer statuses of the helper.
const (
	ansOK int32 = iota
	ansStale
	ansRelayError
	ansTimeout
	ansTooLarge
	ansUnknownCall
)

func (j *job) is(gen uint64, st uint64) bool { return j.word.Load() == gen<<8|st }

// jobKey packs a job index and generation into the helper's key.
func jobKey(dst *[8]byte, idx uint32, gen uint32) []byte {
	binary.LittleEndian.PutUint32(dst[0:], idx)
	binary.LittleEndian.PutUint32(dst[4:], gen)
	return dst[:]
}

func keyJob(b []byte) (idx uint32, gen uint32, ok bool) {
	if len(b) != 8 {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), true
}

// ngHelper does one worker stage's relay exchanges on its own goroutine
// and socket.
type ngHelper struct {
	m    *Media
	jobs []job
	cl   *ng.Client
	enc  ng.Enc
	dec  *ng.Decoded
}

// lookup is the FuncHelper's Lookup: runs on the helper goroutine.
func (h *ngHelper) lookup(key []byte, a *pipeline.Answer) {
	a.Len = uint16(copy(a.Data[:], key))
	idx, gen, ok := keyJob(key)
	if !ok || int(idx) >= len(h.jobs) {
		a.Status = ansStale
		return
	}
	j := &h.jobs[idx]
	g := uint64(gen)
	if !j.word.CompareAndSwap(g<<8|jobQueued, g<<8|jobWorking) {
		a.Status = ansStale // the worker gave up on it and reused it
		return
	}
	st := h.m.stats
	st.Requests[j.op].Add(1)
	// The deadline counts from when the message was parked: time spent
	// in the queue is time the caller waits.
	left := h.m.cfg.Deadline - time.Duration(pipeline.Nanotime()-j.parkedAt)
	if !j.answered {
		left = h.m.cfg.Deadline // a delete: nobody waits, but give it its due
	}
	h.cl.Begin(&h.enc)
	h.enc.B = append(h.enc.B, j.req...)
	t0 := time.Now()
	err := h.cl.Do(j.relay, h.enc.B, t0.Add(left), h.dec)
	j.reply = j.rbuf[:0]
	switch {
	case err == ng.ErrTimeout:
		j.status = ansTimeout
	case err != nil:
		j.status = ansRelayError
	default:
		st.Latency.Observe(time.Since(t0))
		j.status = h.result(j)
	}
	if j.status == ansUnknownCall && j.op != opOffer {
		h.askLingering(j, t0.Add(left))
	}
	if j.status != ansOK {
		if j.op == opDelete && j.status != ansUnknownCall {
			st.Errors[whyDeleteFailed].Add(1)
		} else {
			st.Errors[whyOf(j.status)].Add(1)
		}
	}
	x := h.m.relays.Relay(j.relay)
	if x != nil && (err == nil || h.cl.Heard().After(t0)) {
		x.lastOK.Store(time.Now().UnixNano()) // it answered, if only late replies: alive
	}
	if x != nil && j.status == ansOK {
		switch {
		case j.op == opDelete:
			if x.Calls.Add(-1) < 0 {
				x.Calls.Store(0)
			}
		case j.newCall:
			x.Calls.Add(1)
		}
	}
	a.Status = j.status
	j.word.Store(g<<8 | jobDone)
}

// askLingering asks the relays that left the DNS and linger (weight 0,
// still up) for an answer or delete the Call-ID's relay did not know: the
// call was offered there before it left, and the hash now picks another.
// The first that knows the call takes the job (j.relay, for its call
// count). Costs an exchange per lingering relay, only for such calls, and
// nothing when no relay lingers.
func (h *ngHelper) askLingering(j *job, deadline time.Time) {
	set := h.m.relays.Load()
	for i := range set.Backends {
		b := &set.Backends[i]
		if b.Addr == j.relay || !b.Up || b.Weight > 0 || !time.Now().Before(deadline) {
			continue
		}
		h.cl.Begin(&h.enc)
		h.enc.B = append(h.enc.B, j.req...)
		if h.cl.Do(b.Addr, h.enc.B, deadline, h.dec) != nil {
			continue
		}
		if st := h.result(j); st != ansUnknownCall {
			j.status, j.relay = st, b.Addr
			h.m.stats.Lingered.Add(1)
			return
		}
	}
}

// result reads the relay's reply into j.reply.
func (h *ngHelper) result(j *job) int32 {
	res, reason := ng.Result(h.dec)
	if string(res) != "ok" {
		if isUnknownCall(reason) {
			return ansUnknownCall
		}
		return ansRelayError
	}
	if j.op == opDelete {
		// rtpengine says "ok" to a delete of a call it does not hold,
		// with a warning: the call was on another relay (one that died).
		if w := h.dec.Str(0, "warning"); isUnknownCall(w) || bytes.Contains(w, []byte("not found")) {
			return ansUnknownCall
		}
		return ansOK
	}
	sdp := h.dec.Str(0, "sdp")
	if len(sdp) == 0 {
		return ansRelayError
	}
	if len(sdp) > len(j.rbuf) {
		return ansTooLarge
	}
	j.reply = append(j.rbuf[:0], sdp...)
	return ansOK
}

// isUnknownCall recognises rtpengine's "Unknown call-id" (and "Unknown
// call-ID"/"Call-ID not found" of other versions).
func isUnknownCall(reason []byte) bool {
	s := string(reason)
	return len(s) >= 7 && (s[:7] == "Unknown" || s == "Call-ID not found")
}

func whyOf(status int32) int {
	switch status {
	case ansTimeout:
		return whyTimeout
	case ansTooLarge:
		return whyTooLarge
	case ansUnknownCall:
		return whyUnknownCall
	}
	return whyRelayError
}

// newHelpers makes the stage's helpers and starts their goroutines.
func (m *Media) newHelpers(env *pipeline.Env, jobs []job, side string) ([]pipeline.HelperRef, []*pipeline.FuncHelper, error) {
	fb := pipeline.Fallback{RetryAfter: m.cfg.RetryAfter}
	var refs []pipeline.HelperRef
	var fhs []*pipeline.FuncHelper
	for i := 0; i < m.cfg.Helpers; i++ {
		cl, err := ng.NewClient(netip.AddrPortFrom(m.cfg.Local, 0), side+strconv.Itoa(env.Worker)+"."+strconv.Itoa(i))
		if err != nil {
			return nil, nil, err
		}
		cl.Retry = m.cfg.Retry
		h := &ngHelper{m: m, jobs: jobs, cl: cl, dec: ng.NewDecoded(4096)}
		h.enc.B = make([]byte, 0, reqMax+64)
		// Every outstanding job may sit in one helper's queue: a request
		// is never refused, so a job is never lost to a full queue.
		fh := pipeline.NewFuncHelper(len(jobs), h.lookup)
		ref, err := env.Helper(fh, fb)
		if err != nil {
			cl.Close()
			return nil, nil, err
		}
		refs = append(refs, ref)
		fhs = append(fhs, fh)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer cl.Close()
			fh.Run(m.ctx)
		}()
	}
	return refs, fhs, nil
}

func durationNs(ns int64) time.Duration { return time.Duration(ns) }

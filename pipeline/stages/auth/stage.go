package auth

import (
	"bytes"
	"time"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

// credResult is what a request's credentials amount to for our realm.
type credResult uint8

const (
	credNone        credResult = iota // no credentials for our realm
	credOK                            // parsed into checker.cr
	credMalformed                     // 400
	credUnsupported                   // well-formed but not for us to verify: challenge
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name:    "auth",
	Doc:     "digest authentication: 401/407 challenge, verify from the per-core cache, park on a store lookup",
	Section: "[auth]",
	Parks:   true,
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_auth_challenges_total", Help: "401/407 challenges sent."},
		{Name: "sipedge_auth_successes_total", Help: "Requests that authenticated."},
		{Name: "sipedge_auth_failures_total", Help: "Failed authentications (403, malformed, forged nonce)."},
		{Name: "sipedge_auth_stale_total", Help: "Right answers to expired nonces, challenged with stale=true."},
		{Name: "sipedge_auth_cache_hits_total", Help: "Cache lookups that found the user."},
		{Name: "sipedge_auth_cache_misses_total", Help: "Cache lookups that missed (message parked)."},
		{Name: "sipedge_auth_cache_negative_hits_total", Help: "Cache lookups that found the user known absent."},
		{Name: "sipedge_auth_parked_total", Help: "Messages parked for a store lookup."},
		{Name: "sipedge_auth_trusted_total", Help: "Requests from trusted sources, not authenticated."},
		{Name: "sipedge_auth_bad_requests_total", Help: "400s for malformed credentials or a wrong digest uri."},
		{Name: "sipedge_auth_store_error_answers_total", Help: "Parked messages given the store-error fallback."},
		{Name: "sipedge_auth_fill_skipped_total", Help: "Lookups not cached because an invalidation raced them."},
		{Name: "sipedge_auth_flushes_total", Help: "Whole-cache flushes applied by workers."},
		{Name: "sipedge_auth_cache_evictions_total", Help: "Live cache entries evicted to make room."},
		{Name: "sipedge_auth_cache_entries", Help: "Cached entries, all workers.", Gauge: true},
	},
}

// checker is the per-worker scratch state and the decisions of the
// stage. Every buffer is sized for the largest field sipcore accepts, so
// nothing grows.
type checker struct {
	core  *core
	cr    sipcore.Credentials
	entry Entry
	user  [sipcore.MaxDigestField]byte
	realm [sipcore.MaxDigestField]byte
	uri   [sipcore.MaxDigestURI]byte
	nonce [sipcore.NonceLen]byte
	extra [2048]byte
}

// stage challenges, verifies from the cache, or parks on the worker's
// helper; Resume finishes what it parked.
type stage struct {
	checker
	helper pipeline.HelperRef
}

// StartBatch applies invalidations and reads the wall clock once per loop.
func (s *stage) StartBatch(int64, int) { s.core.startBatch() }

// A changed contract must fail the build, not silently stop the per-batch
// work (draining invalidations) or the resumption of parked messages.
var (
	_ pipeline.BatchStarter = (*stage)(nil)
	_ pipeline.Resumer      = (*stage)(nil)
)

// Process implements pipeline.Stage.
func (s *stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	co := s.core
	a := co.a
	if !c.Parsed || !m.IsRequest || !a.needs(m.Method) {
		return pipeline.Continue
	}
	if a.trusted(c.Src.Addr()) {
		co.cnt.Inc(cTrusted)
		return pipeline.Continue
	}
	user, nres, v, done := s.precheck(c)
	if done {
		return v
	}
	if a.peek != nil {
		e := a.peek.Peek(a.realm, user)
		if e == nil {
			co.cnt.Inc(cNegativeHits)
			return s.fail(c, 403, "Forbidden")
		}
		co.cnt.Inc(cCacheHits)
		return s.decide(c, e, nres)
	}
	e, negative, ok := co.cache.get(a.hash.key(user), c.Now)
	if ok {
		if negative {
			co.cnt.Inc(cNegativeHits)
			return s.fail(c, 403, "Forbidden")
		}
		co.cnt.Inc(cCacheHits)
		return s.decide(c, e, nres)
	}
	co.cnt.Inc(cCacheMisses)
	co.cnt.Inc(cParked)
	return c.Park(s.helper, user, a.cfg.Deadline)
}

// Resume implements pipeline.Resumer: the helper's answer for a message
// Process parked fills the cache, then the request is verified. A store
// error is counted as one and gets the store-error fallback (503 with
// Retry-After, or a drop counted as a helper error), not a park timeout.
func (s *stage) Resume(c *pipeline.Ctx) pipeline.Verdict {
	co := s.core
	a := co.a
	status, seq := decodeAnswer(c.Answer, &s.entry)
	m := c.Msg
	if !c.Parsed || !m.IsRequest {
		return c.Drop(pipeline.DropUnparsable)
	}
	user, nres, v, done := s.precheck(c)
	if done {
		return v
	}
	fill := seq >= co.applied
	if !fill {
		co.cnt.Inc(cFillSkipped)
	}
	switch status {
	case answerFound:
		if fill {
			exp := int64(0)
			if a.cfg.CacheTTL > 0 {
				exp = c.Now + int64(a.cfg.CacheTTL)
			}
			co.cache.put(a.hash.key(user), &s.entry, c.Now, exp)
		}
		return s.decide(c, &s.entry, nres)
	case answerNotFound:
		if fill {
			co.cache.put(a.hash.key(user), nil, c.Now, c.Now+int64(a.cfg.NegativeTTL))
		}
		return s.fail(c, 403, "Forbidden")
	}
	co.cnt.Inc(cStoreErrors)
	if a.cfg.DropOnStoreError {
		return c.Drop(pipeline.DropHelperError)
	}
	return c.Respond(503, "Service Unavailable (credential store unavailable)", a.retry)
}

// precheck does everything that needs no credential lookup: find our
// credentials, check their uri and nonce, and unescape the user name.
// When done is true, v is the verdict already reached.
func (s *checker) precheck(c *pipeline.Ctx) (user []byte, nres sipcore.NonceResult, v pipeline.Verdict, done bool) {
	m := c.Msg
	a := s.core.a
	switch s.credentials(m) {
	case credNone, credUnsupported:
		return nil, 0, s.challenge(c, false, 0), true
	case credMalformed:
		return nil, 0, s.fail(c, 400, "Bad Request (malformed digest credentials)"), true
	}
	cr := &s.cr
	if cr.UserHash {
		// Not offered (the stores index users by name): ask again.
		return nil, 0, s.challenge(c, false, 0), true
	}
	if !a.cfg.IgnoreURI && !bytes.Equal(s.field(s.uri[:0], cr.URI), m.B(m.RURI.Raw)) {
		return nil, 0, s.fail(c, 400, "Bad Request (digest uri is not the Request-URI)"), true
	}
	nres = a.cfg.NonceKey.Check(s.field(s.uri[:0], cr.Nonce), a.realm, s.wall(), a.cfg.NonceMaxAge)
	if nres == sipcore.NonceInvalid {
		// Forged, from another cluster, or mangled: a failure, and a
		// fresh challenge for a client that is merely confused.
		s.failed(c)
		return nil, 0, s.challenge(c, false, 0), true
	}
	return s.field(s.user[:0], cr.Username), nres, 0, false
}

// decide verifies the credentials against e and answers.
func (s *checker) decide(c *pipeline.Ctx, e *Entry, nres sipcore.NonceResult) pipeline.Verdict {
	cr := &s.cr
	ha1 := e.HA1(cr.Algorithm)
	if ha1 == nil {
		// The user has no HA1 for the algorithm the client chose: offer
		// only the ones it has, if any of ours.
		if s.offers(e.Has) {
			return s.challenge(c, false, e.Has)
		}
		return s.fail(c, 403, "Forbidden")
	}
	m := c.Msg
	if !cr.Verify(m.B(m.MethodSpan), ha1) {
		return s.fail(c, 403, "Forbidden")
	}
	if nres == sipcore.NonceStale {
		s.core.cnt.Inc(cStale)
		return s.challenge(c, true, e.Has)
	}
	s.core.cnt.Inc(cSuccesses)
	return pipeline.Continue
}

// credentials finds the credentials for our realm: Authorization for
// REGISTER (we act as the registrar), Proxy-Authorization otherwise.
// Credentials for other realms belong to someone else and are skipped.
func (s *checker) credentials(m *sipcore.Msg) credResult {
	kind := sipcore.HdrProxyAuthorization
	if m.Method == sipcore.MethodREGISTER {
		kind = sipcore.HdrAuthorization
	}
	res := credNone
	for i := m.Next(kind, 0); i >= 0; i = m.Next(kind, i+1) {
		err := sipcore.ParseCredentials(m.B(m.Headers[i].Value), &s.cr)
		if err == nil {
			if bytes.Equal(s.field(s.realm[:0], s.cr.Realm), s.core.a.realm) {
				return credOK
			}
			continue
		}
		// A type assertion, not errors.As: ParseCredentials returns
		// *DigestError itself, and errors.As would allocate.
		if de, ok := err.(*sipcore.DigestError); ok && de.Unsupported() {
			if res == credNone {
				res = credUnsupported
			}
			continue
		}
		res = credMalformed
	}
	return res
}

// field returns a credential field unescaped into dst's storage when the
// parser saw escapes, the field itself otherwise.
func (s *checker) field(dst, raw []byte) []byte {
	if !s.cr.Escaped {
		return raw
	}
	return sipcore.AppendUnescaped(dst, raw)
}

func (s *checker) wall() time.Time {
	if s.core.wall.IsZero() {
		return s.core.a.cfg.Clock()
	}
	return s.core.wall
}

// offers reports whether any algorithm we offer is among has.
func (s *checker) offers(has uint8) bool {
	for _, alg := range s.core.a.algs {
		if algBit(alg)&has != 0 {
			return true
		}
	}
	return false
}

func algBit(alg sipcore.Algorithm) uint8 {
	if alg == sipcore.AlgMD5 {
		return HasMD5
	}
	return HasSHA256
}

// challenge answers 407 (401 for REGISTER) with a fresh nonce, one
// challenge line per algorithm we offer (restricted to has when not 0).
func (s *checker) challenge(c *pipeline.Ctx, stale bool, has uint8) pipeline.Verdict {
	a := s.core.a
	m := c.Msg
	proxy := m.Method != sipcore.MethodREGISTER
	nonce := a.cfg.NonceKey.Append(s.nonce[:0], s.wall(), a.realm)
	b := s.extra[:0]
	ch := sipcore.Challenge{Proxy: proxy, Realm: a.realm, Nonce: nonce, Stale: stale}
	for _, alg := range a.algs {
		if has != 0 && algBit(alg)&has == 0 {
			continue
		}
		ch.Algorithm = alg
		b = sipcore.AppendChallenge(b, &ch)
	}
	s.core.cnt.Inc(cChallenges)
	if proxy {
		return c.Respond(407, "Proxy Authentication Required", b)
	}
	return c.Respond(401, "Unauthorized", b)
}

// fail answers status and tells the failure sink.
func (s *checker) fail(c *pipeline.Ctx, status int, reason string) pipeline.Verdict {
	s.failed(c)
	if status == 400 {
		s.core.cnt.Inc(cBadRequests)
	}
	return c.Respond(status, reason, nil)
}

func (s *checker) failed(c *pipeline.Ctx) {
	s.core.cnt.Inc(cFailures)
	if f := s.core.failures; f != nil {
		f.AuthFailed(c.Src.Addr(), c.Now)
	}
}

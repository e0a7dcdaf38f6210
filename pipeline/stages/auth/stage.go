package auth

import (
	"bytes"
	"hash/maphash"
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
		{Name: "sipedge_auth_replays_total", Help: "Right credentials whose nonce-count was already used (replays), challenged again, not counted as failures."},
		{Name: "sipedge_auth_invalid_nonces_total", Help: "Nonces forged, foreign (another secret, source or call) or mangled: challenged again, not counted as failures."},
		{Name: "sipedge_auth_rechallenged_total", Help: "Credentials without qop=auth or with an algorithm not configured: challenged again."},
		{Name: "sipedge_auth_from_mismatch_total", Help: "Authenticated requests refused (403) because the From user is not the authenticated user."},
		{Name: "sipedge_auth_source_park_limit_total", Help: "Lookups refused (store-error fallback) because their source already had max_parked_per_source parked."},
		{Name: "sipedge_auth_unasserted_total", Help: "Authenticated requests forwarded without this node's P-Asserted-Identity (no room in the buffer, or a user name a URI would need escaped)."},
	},
}

// checker is the per-worker scratch state and the decisions of the
// stage. Every buffer is sized for the largest field sipcore accepts, so
// nothing grows.
type checker struct {
	core     *core
	cr       sipcore.Credentials
	entry    Entry
	user     [sipcore.MaxDigestField]byte
	realm    [sipcore.MaxDigestField]byte
	uri      [sipcore.MaxDigestURI]byte
	nonce    [sipcore.NonceLen]byte
	extra    [2048]byte
	nonceBuf [sipcore.MaxDigestField]byte
	nonceRaw []byte // the nonce of the request, unescaped (precheck)
}

// stage challenges, verifies from the cache, or parks on the worker's
// helper; Resume finishes what it parked.
type stage struct {
	checker
	helper pipeline.HelperRef
}

// StartBatch applies invalidations and reads the wall clock once per loop.
func (s *stage) StartBatch(now int64, _ int) { s.core.startBatch(now) }

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
	if !c.Parsed || !m.IsRequest {
		return pipeline.Continue
	}
	trusted := a.trusted(c.Src.Addr())
	if !trusted && !stripPAI(c) {
		return c.Drop(pipeline.DropUnparsable)
	}
	if !a.needs(m.Method) {
		return pipeline.Continue
	}
	if trusted {
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
		} else {
			co.cnt.Inc(cCacheHits)
		}
		return s.decide(c, e, nres)
	}
	e, negative, ok := co.cache.get(a.hash.key(user), c.Now)
	if ok {
		if negative {
			co.cnt.Inc(cNegativeHits)
			return s.decide(c, nil, nres)
		}
		co.cnt.Inc(cCacheHits)
		return s.decide(c, e, nres)
	}
	co.cnt.Inc(cCacheMisses)
	if !co.parks.take(c.Src.Addr(), a.cfg.IPv6Prefix, c.Now, int64(a.cfg.Deadline)) {
		co.cnt.Inc(cSourceParkLimit)
		if a.cfg.DropOnStoreError {
			return c.Drop(pipeline.DropParkFull)
		}
		return c.Respond(503, "Service Unavailable (too many lookups from this source)", a.retry)
	}
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
		return s.decide(c, nil, nres)
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
		return nil, 0, s.challenge(c, false), true
	case credMalformed:
		return nil, 0, s.fail(c, 400, "Bad Request (malformed digest credentials)"), true
	}
	cr := &s.cr
	if cr.UserHash {
		// Not offered (the stores index users by name): ask again.
		return nil, 0, s.challenge(c, false), true
	}
	if !a.cfg.IgnoreURI && !bytes.Equal(s.field(s.uri[:0], cr.URI), m.B(m.RURI.Raw)) {
		return nil, 0, s.fail(c, 400, "Bad Request (digest uri is not the Request-URI)"), true
	}
	if !a.accepts(cr) {
		// RFC 2069 answers (no qop, so no nc to stop a replay) and
		// algorithms we do not offer are not errors of the client's
		// user: offer what we take.
		s.core.cnt.Inc(cRechallenged)
		return nil, 0, s.challenge(c, false), true
	}
	s.nonceRaw = s.field(s.nonceBuf[:0], cr.Nonce)
	nres = a.cfg.NonceKey.Check(s.nonceRaw, a.realm, s.binding(c), s.wall(), a.cfg.NonceMaxAge)
	if nres == sipcore.NonceInvalid {
		// Forged, issued before a restart with a new secret, by a node
		// with another secret, or for another source or call: a fresh
		// challenge, and no failure, so that a NATed office answering
		// old nonces is not banned for it.
		s.core.cnt.Inc(cInvalidNonces)
		return nil, 0, s.challenge(c, false), true
	}
	return s.field(s.user[:0], cr.Username), nres, 0, false
}

// binding is what the nonce of c's request is bound to.
func (s *checker) binding(c *pipeline.Ctx) sipcore.NonceBinding {
	return sipcore.NonceBinding{Src: c.Src.Addr(), CallID: c.Msg.B(c.Msg.CallID)}
}

// decide verifies the credentials against e (nil: the user is unknown)
// and answers. An unknown user, a user without the HA1 of the algorithm
// the client chose, and a wrong password get the same 403 after the same
// work, so that neither the answer nor its timing says which user names
// exist.
func (s *checker) decide(c *pipeline.Ctx, e *Entry, nres sipcore.NonceResult) pipeline.Verdict {
	cr := &s.cr
	var ha1 []byte
	if e != nil {
		ha1 = e.HA1(cr.Algorithm)
	}
	known := ha1 != nil
	if !known {
		ha1 = s.core.a.dummy.HA1(cr.Algorithm)
	}
	m := c.Msg
	if !cr.Verify(m.B(m.MethodSpan), ha1) || !known {
		return s.fail(c, 403, "Forbidden")
	}
	if nres == sipcore.NonceStale {
		s.core.cnt.Inc(cStale)
		return s.challenge(c, true)
	}
	a := s.core.a
	wall := s.wall().UnixNano()
	if s.core.nc.use(s.nonceRaw, sipcore.NonceIssued(s.nonceRaw), cr.NCValue, s.txKey(c), c.Now, wall-int64(a.cfg.NonceMaxAge)) == ncReplay {
		// Right credentials with a nonce-count already used: a captured
		// request played again (or a nonce this worker had to forget). A
		// new nonce lets an honest client go on without asking its user;
		// no failure is counted, as the source of a replay may be forged.
		s.core.cnt.Inc(cReplays)
		return s.challenge(c, true)
	}
	if a.cfg.FromMustMatch && !s.fromIsUser(m) {
		s.core.cnt.Inc(cFromMismatch)
		return c.Respond(403, "Forbidden (From user is not the authenticated user)", nil)
	}
	s.core.cnt.Inc(cSuccesses)
	if !s.assertIdentity(c, s.field(s.user[:0], s.cr.Username)) {
		s.core.cnt.Inc(cUnasserted)
	}
	return pipeline.Continue
}

// txKey identifies the request's transaction for the retransmission
// exception of the nonce-count check: top Via branch, CSeq and the source
// port (a retransmission leaves from the port the request left from).
func (s *checker) txKey(c *pipeline.Ctx) uint64 {
	m := c.Msg
	var br []byte
	if m.NVia > 0 {
		br = m.B(m.Vias[0].Branch)
	}
	return maphash.Bytes(s.core.a.txSeed, br) ^ (uint64(m.CSeq)<<16|uint64(c.Src.Port()))*0x9e3779b97f4a7c15
}

// fromIsUser reports whether the user part of the From URI is the
// authenticated user name (escapes in neither compared as written).
func (s *checker) fromIsUser(m *sipcore.Msg) bool {
	if !m.From.Parsed && m.ParseAddress(&m.From) != nil {
		return false
	}
	return bytes.Equal(m.B(m.From.URI.User), s.field(s.user[:0], s.cr.Username))
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

// challenge answers 407 (401 for REGISTER) with a fresh nonce, one
// challenge line per algorithm we offer, whoever the user is.
func (s *checker) challenge(c *pipeline.Ctx, stale bool) pipeline.Verdict {
	a := s.core.a
	m := c.Msg
	proxy := m.Method != sipcore.MethodREGISTER
	nonce := a.cfg.NonceKey.Append(s.nonce[:0], s.wall(), a.realm, s.binding(c))
	b := s.extra[:0]
	ch := sipcore.Challenge{Proxy: proxy, Realm: a.realm, Nonce: nonce, Stale: stale}
	for _, alg := range a.algs {
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

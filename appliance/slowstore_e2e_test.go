package appliance_test

import (
	"fmt"
	"testing"
	"time"

	"sipedge/internal/redistest"
)

// slowRedisDelay is how long the proxy in front of Redis holds each
// answer: three times [auth] deadline (50ms), so that every lookup is
// late for the message that asked.
const slowRedisDelay = 150 * time.Millisecond

// A bad day at the store: Redis answers every lookup after the park
// deadline while sipp authenticates calls of one user. The first call gets
// the fallback (503); its late answer fills the cache, so the calls after
// it authenticate from the cache. (Before late answers filled the cache,
// every call timed out the same way and none completed.)
func TestE2EAuthSlowRedis(t *testing.T) {
	requireSipp(t)
	srv := redistest.Start(t)
	redistest.SetUser(t, srv.Client(t), "sipedge:user:", authRealm, "alice", "correct horse")
	proxy := redistest.SlowProxy(t, srv.Addr, slowRedisDelay)
	auth := fmt.Sprintf("[auth]\nenabled = true\nrealm = %q\nalgorithms = [\"MD5\"]\ncheck_uri = false\nstore = \"redis\"\n"+
		"deadline = \"50ms\"\n[auth.redis]\naddresses = [%q]\n", authRealm, proxy)
	r := newLoopRigWith(t, 1, e2eGuard+auth)
	const calls = 40
	uac := r.uacAuth(t, "uac", uacIP, "alice", "correct horse", 10, calls)
	uac.wait(t, 60*time.Second)
	st := sippStats(t, r.dir, "uac")
	var m string
	r.app.get(t, "/metrics", &m)
	t.Logf("Redis answers held %v, deadline 50ms: %d calls completed, %d failed of %d; lookups %v, late answers %v, cache hits %v, fills skipped %v",
		slowRedisDelay, st["SuccessfulCall(C)"], st["FailedCall(C)"], calls,
		metric(t, m, "sipedge_auth_store_lookups_total"), metric(t, m, "sipedge_auth_late_answers_total"),
		metric(t, m, "sipedge_auth_cache_hits_total"), metric(t, m, "sipedge_auth_fill_skipped_total"))
	// The first calls may fail more than once: the store's own connection
	// comes up through the slow proxy too, and its first invalidate-all
	// (it cannot know what changed before) voids the answers in flight.
	if st["SuccessfulCall(C)"] < calls-8 {
		t.Fatalf("%d of %d calls completed with a slow Redis, want all but the first few (the late answers must fill the cache)\n%s",
			st["SuccessfulCall(C)"], calls, errorsLog(r.dir, "uac"))
	}
}

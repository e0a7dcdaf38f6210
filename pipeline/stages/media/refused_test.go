package media

import (
	"strings"
	"testing"
	"time"
)

// Refused (a later stage answered the anchored INVITE itself) sends the
// delete without allocating, and only for an initial INVITE with SDP.
func TestRefusedDeletesWithoutAllocating(t *testing.T) {
	_, s := solo(t, false)
	c := parsedCtx(t, testInvite())
	s.Refused(c, 404)
	if got := s.cnt.Get(cRefused); got != 1 {
		t.Fatalf("refused deletes %d after a refused INVITE, want 1", got)
	}
	req := ""
	for i := range s.jobs {
		if s.jobs[i].op == opDelete {
			req = string(s.jobs[i].req)
		}
	}
	if !strings.Contains(req, "7:command6:delete") || !strings.Contains(req, "7:call-id22:alloc-call@203.0.113.9") {
		t.Fatalf("delete %q: want the INVITE's call", req)
	}
	reinvite := parsedCtx(t, strings.Replace(testInvite(), "To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=t1", 1))
	s.Refused(reinvite, 488)
	if got := s.cnt.Get(cRefused); got != 1 {
		t.Errorf("a refused re-INVITE sent a delete: the dialog's call goes on")
	}
	if a := testing.AllocsPerRun(1000, func() {
		c.Now += int64(10 * time.Second)
		s.Refused(c, 480)
	}); a != 0 {
		t.Errorf("Refused allocates %v times", a)
	}
}

// BenchmarkRefusedDelete is the delete the media stage sends for a
// refused INVITE (encoded into a job, handed to the helper).
func BenchmarkRefusedDelete(b *testing.B) {
	_, s := solo(b, false)
	c := parsedCtx(b, testInvite())
	b.ReportAllocs()
	for b.Loop() {
		c.Now += int64(10 * time.Second)
		s.Refused(c, 404)
	}
}

package pipeline_test

import (
	"context"
	"testing"
	"time"

	"sipedge/pipeline"
)

// A request with the zero Handle (a notice: nothing parked) runs Lookup
// and answers nothing, so it is not counted as unanswered.
func TestFuncHelperNotice(t *testing.T) {
	got := make(chan string, 1)
	fh := pipeline.NewFuncHelper(4, func(key []byte, a *pipeline.Answer) { got <- string(key) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fh.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	fh.Request(pipeline.Handle{}, []byte("delete call-1"))
	select {
	case k := <-got:
		if k != "delete call-1" {
			t.Errorf("Lookup got %q", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lookup never ran for a notice")
	}
	cancel()
	<-done
	if n := fh.Unanswered.Load(); n != 0 {
		t.Errorf("Unanswered %d after a notice, want 0", n)
	}
}

package appliance

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"sipedge/appliance/config"
)

// The drain module's phases: serving -> draining -> drained once quiet
// for idle; undrain goes back to serving; a second drain counts; a reload
// changes idle at once but reports the answer as needing a restart.
func TestDrainModulePhases(t *testing.T) {
	cfg := config.Default()
	cfg.Drain.Idle = config.Duration(100 * time.Millisecond)
	var logs strings.Builder
	m, err := openDrain(&ModuleEnv{Cfg: cfg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d := m.(*drainModule)
	defer d.Close()
	if st := d.status(); st.State != "serving" || st.Drains != 0 {
		t.Fatalf("at open: %+v", st)
	}
	if !d.start("test") || d.start("again") {
		t.Fatal("start: want true, then false while draining")
	}
	if !d.st.Draining() {
		t.Fatal("the stage's switch is off while draining")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !d.waitDrained(ctx) {
		t.Fatalf("not drained after idle: %+v", d.status())
	}
	if st := d.status(); st.State != "drained" || st.Reason != "test" || st.Drains != 1 {
		t.Errorf("drained: %+v", st)
	}
	if !d.undrain() || d.undrain() || d.st.Draining() {
		t.Fatal("undrain: want true, then false, and the switch off")
	}
	// A long idle first, so that the second drain is still draining when
	// its metrics are read, however slow the machine.
	next := *cfg
	next.Drain.Idle = config.Duration(time.Minute)
	if r := d.Reload(cfg, &next); len(r) != 0 || d.cfg.Idle.Std() != time.Minute {
		t.Errorf("reload of idle: restart %v, idle %v", r, d.cfg.Idle)
	}
	d.start("second")
	if st := d.status(); st.State != "draining" || st.Drains != 2 {
		t.Errorf("second drain: %+v", st)
	}
	next.Drain.Answer, next.Drain.Peer = 302, "sip:192.0.2.7"
	if r := d.Reload(cfg, &next); len(r) != 1 || !strings.Contains(r[0], "drain.answer") {
		t.Errorf("reload of the answer: restart %v, want it named", r)
	}
	for _, want := range []string{"draining", "drained: no call message", "undrained"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	var mt strings.Builder
	d.WriteMetrics(promWriter{&mt})
	if !strings.Contains(mt.String(), "sipedge_drain_state 1\n") || !strings.Contains(mt.String(), "sipedge_drains_total 2\n") {
		t.Errorf("metrics:\n%s", mt.String())
	}
}

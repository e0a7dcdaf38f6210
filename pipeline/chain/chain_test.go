package chain

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

// nop is a stage that decides nothing: the tests here only order makers.
type nop struct{}

func (nop) Process(*pipeline.Ctx) pipeline.Verdict { return pipeline.Continue }

// fake is a chain of declarations a, b, c, d and makers for them.
func fake() Chain {
	return Chain{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}
}

func maker(name string) pipeline.StageMaker { return pipeline.StageOf(name, nop{}) }

func names(ms []pipeline.StageMaker) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Def().Name)
	}
	return out
}

func mustPanic(t *testing.T, what, mention string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s did not panic", what)
			return
		}
		if s, _ := r.(string); !strings.Contains(s, mention) {
			t.Errorf("%s panicked with %v, want a message naming %q", what, r, mention)
		}
	}()
	f()
}

func TestNames(t *testing.T) {
	if got := fake().Names(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("Names = %v", got)
	}
	if got := (Chain{}).Names(); len(got) != 0 {
		t.Errorf("empty chain's Names = %v", got)
	}
}

func TestOnly(t *testing.T) {
	c := fake()
	// The chain's order, not the order the names are given in.
	if got := c.Only("d", "b").Names(); !slices.Equal(got, []string{"b", "d"}) {
		t.Errorf("Only(d, b) = %v, want [b d]", got)
	}
	if got := c.Only().Names(); len(got) != 0 {
		t.Errorf("Only() = %v, want nothing", got)
	}
	if got := c.Names(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("Only changed the chain it was called on: %v", got)
	}
	mustPanic(t, "Only(b, x)", "x", func() { c.Only("b", "x") })
}

func TestWithout(t *testing.T) {
	c := fake()
	if got := c.Without("c", "a").Names(); !slices.Equal(got, []string{"b", "d"}) {
		t.Errorf("Without(c, a) = %v, want [b d]", got)
	}
	// A name not in the chain is nothing to leave out.
	if got := c.Without("x").Names(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("Without(x) = %v", got)
	}
	if got := c.Without("a", "b", "c", "d"); len(got) != 0 {
		t.Errorf("Without(all) = %v", got.Names())
	}
}

func TestInsert(t *testing.T) {
	c := fake()
	x, y := &pipeline.StageDef{Name: "x"}, &pipeline.StageDef{Name: "y"}
	for _, tc := range []struct {
		before string
		want   []string
	}{
		{"a", []string{"x", "y", "a", "b", "c", "d"}},
		{"c", []string{"a", "b", "x", "y", "c", "d"}},
		{"d", []string{"a", "b", "c", "x", "y", "d"}},
		{"", []string{"a", "b", "c", "d", "x", "y"}},
	} {
		got := c.Insert(tc.before, x, y)
		if !slices.Equal(got.Names(), tc.want) {
			t.Errorf("Insert(%q, x, y) = %v, want %v", tc.before, got.Names(), tc.want)
		}
		if got := c.Names(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
			t.Fatalf("Insert(%q) changed the chain it was called on: %v", tc.before, got)
		}
	}
	// Inserting into a sub-chain must not write over the chain it shares
	// its array with.
	head := c[:2]
	_ = head.Insert("", x)
	if got := c.Names(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("Insert at the end of c[:2] wrote into c: %v", got)
	}
	mustPanic(t, "Insert(x)", "x", func() { c.Insert("x", y) })
}

func TestMakers(t *testing.T) {
	c := fake()
	t.Run("order", func(t *testing.T) {
		got, err := c.Makers(maker("d"), maker("a"), maker("c"), maker("b"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names(got), []string{"a", "b", "c", "d"}) {
			t.Errorf("Makers = %v, want the chain's order", names(got))
		}
	})
	t.Run("disabled stage left out", func(t *testing.T) {
		// b has no maker (its section is off); nil makers are off too.
		got, err := c.Makers(maker("d"), nil, maker("a"), maker("c"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names(got), []string{"a", "c", "d"}) {
			t.Errorf("Makers = %v, want [a c d]", names(got))
		}
	})
	t.Run("unknown stage", func(t *testing.T) {
		_, err := c.Makers(maker("a"), maker("zz"))
		if err == nil || !strings.Contains(err.Error(), `"zz"`) || !strings.Contains(err.Error(), "chain.go") {
			t.Errorf("Makers with a stage not in the chain: err = %v, want one naming the stage and chain.go", err)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := c.Makers(maker("b"), maker("a"), maker("b"))
		if err == nil || !strings.Contains(err.Error(), `"b"`) {
			t.Errorf("Makers with two makers for b: err = %v, want one naming b", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		if _, err := c.Makers(); err == nil {
			t.Error("Makers() with no maker: no error")
		}
		if _, err := c.Makers(nil); err == nil {
			t.Error("Makers(nil): no error")
		}
	})
	t.Run("kept and inserted stages", func(t *testing.T) {
		// What tests do: keep some stages of the chain and add their own.
		x := pipeline.StageOf("x", nop{})
		got, err := c.Only("a", "c").Insert("c", x.Def()).Makers(maker("c"), x, maker("a"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names(got), []string{"a", "x", "c"}) {
			t.Errorf("Makers = %v, want [a x c]", names(got))
		}
		if _, err := c.Only("a").Makers(maker("a"), maker("b")); err == nil {
			t.Error("a maker for a stage Only left out: no error")
		}
	})
}

// The real chain file: every stage has a maker type of its own and the
// proxy's makers order into it.
func TestDefaultProxyMakers(t *testing.T) {
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: netip.MustParseAddrPort("192.0.2.10:5060"), Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	key := sipcore.NewKey([]byte("chain test secret, 16 bytes at least"))
	ms, err := Proxy(ProxyConfig{Key: &key, SentBy: "192.0.2.1:5060", Names: []string{"192.0.2.1"}, Backends: bk})
	if err != nil {
		t.Fatal(err)
	}
	// Reversed on purpose: the chain file orders them, not the caller.
	slices.Reverse(ms)
	got, err := Default.Makers(ms...)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sanity", "response", "self", "route"}; !slices.Equal(names(got), want) {
		t.Errorf("Default.Makers(proxy) = %v, want %v (guard and auth off)", names(got), want)
	}
	for _, m := range got {
		if !slices.Contains(Default, m.Def()) {
			t.Errorf("maker of %q returns a StageDef that is not the one in chain.Default", m.Def().Name)
		}
	}
}

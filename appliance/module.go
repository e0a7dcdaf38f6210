package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/port"
	"sipedge/pipeline/stages/guard"
	"sipedge/sipcore"
)

// Module is one capability of the daemon: what it opens from the
// configuration, the stages it gives the chain, the goroutines it runs,
// what a reload changes in it, and what it adds to the admin server. The
// daemon, sipreplay and the tests loop over modules; none of them knows
// what a module does.
type Module interface {
	// Stages are the module's stages, in any order (the chain file
	// orders them); none when its section is disabled.
	Stages() []pipeline.StageMaker
	// Start runs the module's goroutines until ctx ends; go starts one
	// and lets the caller wait for it.
	Start(ctx context.Context, goFn func(func())) error
	// Reload applies what may change without a restart (old to cfg, both
	// checked) and returns the settings that changed but need one.
	Reload(old, cfg *config.Config) (restart []string)
	// Routes adds the module's admin routes.
	Routes(mux *http.ServeMux)
	// WriteMetrics writes the module's own metrics, those that are not
	// per-core stage counters (the exporter writes those from StageDefs).
	WriteMetrics(p promWriter)
	// Close releases what the module opened; the workers have stopped.
	Close()
}

// ModuleDef declares a module: its name, its section, what it does, and
// how it opens.
type ModuleDef struct {
	Name, Section, Doc string
	// Open makes the module from env. It is always opened: a disabled
	// section gives a module without stages whose routes say so.
	Open func(env *ModuleEnv) (Module, error)
}

// Modules are the daemon's modules in the order they open (a later one
// may use an earlier one through ModuleEnv.Module) and close in reverse.
// Adding a capability is a module here and, if it has a stage, one line
// in the chain file (pipeline/chain/chain.go).
var Modules = []ModuleDef{
	{Name: "proxy", Section: "[node], [dispatcher]", Doc: "the stateless proxy's stages (sanity, response, self, route), the backend set and its prober, /backends", Open: openProxy},
	{Name: "guard", Section: "[guard]", Doc: "flood and scanner deflection before the parser, bans (also in the XDP program), /bans and /allow", Open: openGuard},
	{Name: "auth", Section: "[auth]", Doc: "digest authentication from a per-core cache, the credential store (file or Redis) and one lookup helper per worker", Open: openAuth},
	{Name: "media", Section: "[media]", Doc: "SDP anchored on rtpengine relays (ng protocol): offers and answers parked while the relay answers, deletes, the relay set and its pinger, /relays and /media/calls/{callid}", Open: openMedia},
	{Name: "drain", Section: "[drain]", Doc: "graceful withdrawal: the drain stage refusing new INVITEs, /healthz 503 while draining, idle detection, /drain and /undrain", Open: openDrain},
	{Name: "registrar", Section: "[registrar]", Doc: "the registrar and location roles: bindings in memory or Redis (Cluster), a per-core location cache kept fresh by pushes, /registrar/aor", Open: openRegistrar},
}

// ModuleEnv is what a module opens with.
type ModuleEnv struct {
	Cfg *config.Config
	Log *slog.Logger
	// Key is the cluster key of [node] secret.
	Key *sipcore.Key
	// Workers is the number of workers the node runs.
	Workers int
	// Self is the address the node answers as (Via sent-by, Record-Route).
	Self netip.AddrPort
	// Banner is the XDP program's ban map in afxdp mode, nil otherwise.
	Banner guard.Banner
	// Probe turns the backend prober on (off for offline replays: every
	// backend counts as up).
	Probe bool
	// Wake makes sleeping workers run an iteration now (an operator's
	// change is applied at once); set by the daemon after the workers
	// exist, safe to call before.
	Wake func()

	opened map[string]Module
}

// Module returns the module named name opened before this one, or nil.
func (e *ModuleEnv) Module(name string) Module { return e.opened[name] }

func (e *ModuleEnv) wake() {
	if e.Wake != nil {
		e.Wake()
	}
}

// Node is every module a configuration opens, ready to make workers. The
// daemon, sipreplay --into pipeline and the tests build workers through
// it, so a replay measures what the daemon runs.
type Node struct {
	Env     *ModuleEnv
	modules []Module
	names   []string
}

// OpenNode opens every module of Modules for env (env.Cfg checked by
// config.Check). On error what was opened is closed.
func OpenNode(env *ModuleEnv) (*Node, error) {
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.Key == nil {
		k := sipcore.NewKey([]byte(env.Cfg.Node.Secret))
		env.Key = &k
	}
	env.opened = map[string]Module{}
	n := &Node{Env: env}
	for _, d := range Modules {
		m, err := d.Open(env)
		if err != nil {
			n.Close()
			return nil, err
		}
		env.opened[d.Name] = m
		n.modules = append(n.modules, m)
		n.names = append(n.names, d.Name)
	}
	return n, nil
}

// Module returns the module named name.
func (n *Node) Module(name string) Module { return n.Env.opened[name] }

// Makers are the stages of every module, in the chain file's order.
func (n *Node) Makers() ([]pipeline.StageMaker, error) {
	var all []pipeline.StageMaker
	for _, m := range n.modules {
		all = append(all, m.Stages()...)
	}
	return chain.Default.Makers(all...)
}

// NewWorker builds a worker on p running the chain: wc carries what
// differs per worker and per use (ID, Core, wait settings, SampleEvery,
// Now); Key and Batch come from the node.
func (n *Node) NewWorker(p port.Port, wc pipeline.Config) (*pipeline.Worker, error) {
	makers, err := n.Makers()
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	wc.Key, wc.Batch = n.Env.Key, n.Env.Cfg.IO.Batch
	w, err := pipeline.NewWorker(p, wc, makers)
	if err != nil {
		return nil, fmt.Errorf("appliance: worker %d: %w", wc.ID, err)
	}
	return w, nil
}

// Start starts every module's goroutines; they end with ctx, and goFn
// lets the caller wait for them.
func (n *Node) Start(ctx context.Context, goFn func(func())) error {
	for i, m := range n.modules {
		if err := m.Start(ctx, goFn); err != nil {
			return fmt.Errorf("appliance: module %s: %w", n.names[i], err)
		}
	}
	return nil
}

// Reload applies cfg to every module and returns what needs a restart.
func (n *Node) Reload(old, cfg *config.Config) []string {
	var out []string
	for _, m := range n.modules {
		out = append(out, m.Reload(old, cfg)...)
	}
	n.Env.Cfg = cfg
	return out
}

// Routes adds every module's admin routes.
func (n *Node) Routes(mux *http.ServeMux) {
	for _, m := range n.modules {
		m.Routes(mux)
	}
}

// writeMetrics writes every module's own metrics.
func (n *Node) writeMetrics(p promWriter) {
	for _, m := range n.modules {
		m.WriteMetrics(p)
	}
}

// Close closes the modules in reverse order; the workers have stopped.
func (n *Node) Close() {
	if n == nil {
		return
	}
	for i := len(n.modules) - 1; i >= 0; i-- {
		n.modules[i].Close()
	}
	n.modules = nil
}

// Backends is the proxy module's backend set.
func (n *Node) Backends() *pipeline.Backends { return n.Module("proxy").(*proxyModule).backends }

// guardOf is the guard of a node, nil when [guard] is disabled.
func (n *Node) guardOf() *guard.Guard {
	if m, ok := n.Module("guard").(*guardModule); ok {
		return m.g
	}
	return nil
}

// nop gives a module the parts of the contract it has no use for.
type nop struct{}

func (nop) Stages() []pipeline.StageMaker                     { return nil }
func (nop) Start(context.Context, func(func())) error         { return nil }
func (nop) Reload(old, cfg *config.Config) (restart []string) { return nil }
func (nop) Routes(*http.ServeMux)                             {}
func (nop) WriteMetrics(promWriter)                           {}
func (nop) Close()                                            {}

var errNoSelf = errors.New("appliance: ModuleEnv.Self is required (the address the node answers as)")

// waitGroupGo adapts a WaitGroup to Start's goFn.
func waitGroupGo(wg *sync.WaitGroup) func(func()) {
	return func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
}

// ModulesMarkdown lists Modules as the README's Architecture section shows
// them (a test keeps the README in step).
func ModulesMarkdown() string {
	var b strings.Builder
	for _, d := range Modules {
		fmt.Fprintf(&b, "- %s (%s): %s\n", d.Name, d.Section, d.Doc)
	}
	return b.String()
}

// Package appliance owns the daemon: the appliance binary, the TOML
// configuration, core pinning, lifecycle (start, reload, stop), the admin
// HTTP listener (metrics, health, pprof) and the modules (module.go): each
// capability (proxy, guard, auth, drain) opens from its section, gives its
// stages to the chain file, runs its goroutines, reloads what it can, and
// adds its admin routes and metrics. metrics.go is the one exporter.
//
// appliance wires the other packages together. Only commands
// (appliance/cmd/..., tools/cmd/...) and tools/replay may import it:
// sipreplay --into pipeline must run exactly the daemon's pipeline, so it
// builds its workers with OpenNode and Node.NewWorker. No other package of
// this module may import it.
package appliance

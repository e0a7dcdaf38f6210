// Package appliance owns the daemon: the appliance binary, the TOML
// configuration, core pinning, lifecycle (start, reload, stop) and the admin
// HTTP listener (metrics, health, pprof).
//
// appliance wires the other packages together. Only commands
// (appliance/cmd/..., tools/cmd/...) and tools/replay may import it:
// sipreplay --into pipeline must run exactly the daemon's pipeline, so it
// builds it with NewBackends, NewProxy and NewWorker. No other package of
// this module may import it.
package appliance

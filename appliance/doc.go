// Package appliance owns the daemon: the appliance binary, the TOML
// configuration, core pinning, lifecycle (start, reload, stop) and the admin
// HTTP listener (metrics, health, pprof).
//
// appliance wires the other packages together; no other package of this
// module may import it.
package appliance

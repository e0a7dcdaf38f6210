// Package drain is the stage that takes a node out of service gracefully,
// for an anycast/ECMP withdrawal or a restart: while the node drains, new
// INVITEs are refused (503 with Retry-After, or 302/305 to a peer) and
// everything that belongs to a call already under way (responses,
// requests inside a dialog, CANCEL) keeps flowing. It also notes, per
// worker, when it last saw such traffic, so the daemon can tell when the
// node has gone idle and SIGTERM is safe. See README.md.
//
// The package owns the stage's declaration (Def: its counters), its Config
// ([drain]: the answer and the peer), the switch the operator flips (State,
// shared by every worker and read once per batch) and the per-worker
// activity clocks (State.LastActivity). When to drain, how long to wait
// and what to log are the daemon's (appliance), not this package's.
//
// drain may import pipeline and sipcore only; it must never import
// appliance, tools, bench, another stage or a port.
package drain

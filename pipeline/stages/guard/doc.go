// Package guard is the pipeline's first line of defence, run right after
// decode and before the SIP parser: it drops datagrams that are too large
// or not SIP at all, counts headers and Vias on the raw bytes, limits every
// source with per-core token buckets (all messages, INVITE, REGISTER),
// recognises scanners by User-Agent/From/To, turns repeated abuse and
// authentication failures into bans, and sheds new INVITEs and REGISTERs
// with 503 when its worker falls behind, heavy sources first. Bans need
// evidence a third party cannot forge for someone else: From/To matches
// never ban, User-Agent matches only repeated, and backends (address and
// port: limited by their own limit), their addresses and trusted networks
// are never banned.
//
// Bans are enforced twice: in the stage itself (any port) and, when a
// Banner is configured, below userspace: in the XDP program
// (afxdp.Program) or in the socket port's socket filter
// (afxdp.SocketBans), so a banned source costs no more than a map lookup
// in the kernel. The map update is
// a syscall: stages hand ban requests to the Guard's ban goroutine through
// one lock-free single-producer ring per worker.
//
// Everything a stage touches per message is its own (tables, counters,
// rings); what the operator changes (allow-list, bans) reaches it through
// an immutable snapshot loaded once per batch or through per-core command
// rings, never through a lock.
//
// The package owns the stage's declaration (Def: its drop reasons and
// counters), its Config ([guard]), the shared Guard (a pipeline.StageMaker:
// one Stage per worker through NewStage), the ban goroutine (Run) and the
// operator API (Bans, Ban, Unban, Allow, Disallow). The auth stage reports
// failed digests to the guard stage of its own worker (Stage.AuthFailed)
// through an interface of its own: neither stage imports the other.
// See README.md.
//
// guard may import pipeline (and pipeline/internal/spsc), pipeline/node and
// sipcore only; it must never import appliance, tools, bench, another
// stage, a port or afxdp: the Banner interface is how it reaches the XDP
// map, and only its tests import afxdp, afxdp/vethtest, ports and the
// chain file (pipeline/chain).
package guard

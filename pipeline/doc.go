// Package pipeline owns the per-core run-to-completion worker loop, the Port
// abstraction that feeds it (afxdp, kernel UDP socket, pcap), the stages
// (guard, auth, registrar, dispatcher, media), per-core counters and
// park/resume of messages waiting on asynchronous I/O.
//
// What is here:
//   - Worker (worker.go): one per core, owns one port.Port. Each Poll drains
//     the helpers' answer rings, receives a batch, runs every message
//     through the stages, transmits, releases, runs due timers and
//     publishes its counters (counters.go) with atomic stores for Stats.
//     Between batches Run spins or sleeps in the port's Wait on its own
//     pinned thread, as its WaitMode says (wait.go); helpers, Stop and
//     Wake ring an eventfd to wake it.
//   - Stage, Ctx, Verdict, DropReason (stage.go): the contract a stage
//     implements; the order is the slice given to NewWorker.
//   - Park/resume (park.go, ring.go): a per-core pool of message copies,
//     the Helper interface, and one single-producer single-consumer answer
//     ring per worker per helper; deadlines on a hashed timer wheel
//     (timer.go) with a 503 or drop fallback.
//   - The stateless proxy and dispatcher (proxy.go): sanity, response,
//     self and route stages (RFC 3261 16.3-16.11), backends by weighted
//     rendezvous hashing of Call-ID behind an atomic snapshot
//     (backends.go), and the OPTIONS health prober (prober.go).
//
// Stages must never know which port feeds them. Nothing on the per-message
// path allocates, locks or touches an atomic shared with another worker.
//
// pipeline may import sipcore and afxdp (only from its afxdp port); it must
// not import appliance, tools or bench.
package pipeline

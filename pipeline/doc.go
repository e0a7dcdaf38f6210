// Package pipeline owns the per-core run-to-completion worker and the stage
// contract every stage implements. The stages themselves are packages of
// their own (pipeline/stages/...), ordered by the chain file
// (pipeline/chain); the ports that feed a worker are in pipeline/port/...
//
// What is here, split by concern so that each part is testable alone:
//   - The loop (worker.go, wait.go): Worker, one per core, owns one
//     port.Port. Each Poll drains the helpers' answer rings, receives a
//     batch, hands every message to the chain, acts on the verdict
//     (transmit, drop, park), releases, runs due timers and publishes its
//     counters. Between batches Run spins or sleeps in the port's Wait on
//     its own pinned thread, as its WaitMode says; helpers, Stop and Wake
//     ring an eventfd to wake it.
//   - The chain (chain.go): the worker's stages in order, run to a
//     verdict, with per-stage verdict counts and sampled timing; a parked
//     message comes back to Resume on the very stage that parked it.
//     Solo runs one stage alone for its tests and benchmarks.
//   - The contract (stage.go, ctx.go): StageDef (name, section, declared
//     counters and drop reasons), StageMaker (NewStage(*Env), the one
//     constructor shape), Stage, BatchStarter, Resumer, Refuser (hears
//     of requests a later stage refused), Ctx, Verdict,
//     DropReason, Fallback and typed HelperRef handles.
//   - The parker (parker.go, timer.go, helper.go): a per-core pool of
//     message copies, the Helper interface, one single-producer
//     single-consumer answer ring per helper (internal/spsc, the one
//     ring of the module), deadlines on a hashed timer wheel, and the
//     fallback (503 or drop) chosen by the stage that parks.
//   - Counters (counter.go, counters.go): the one per-core counter
//     mechanism. Owners count in plain fields, the worker publishes with
//     atomic stores once per iteration, the exporter (appliance) reads
//     and names them from the declarations at scrape time.
//   - Backends and the OPTIONS prober (backends.go, prober.go): weighted
//     rendezvous hashing of Call-ID behind an atomic snapshot.
//
// Stages must never know which port feeds them. Nothing on the per-message
// path allocates, locks or touches an atomic shared with another worker.
//
// pipeline may import sipcore, pipeline/port and pipeline/internal; it must
// not import a stage, appliance, tools or bench.
package pipeline

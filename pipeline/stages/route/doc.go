// Package route is the dispatcher: the stage that picks the next hop of a
// request and forwards it (RFC 3261 16.6, 16.11). Requests from outside
// go to the backend Call-ID hashing picks (pipeline.Backends: weighted
// rendezvous hashing behind an atomic snapshot), so every message of a
// call (ACK and CANCEL included) reaches the same backend with no state
// here. Requests from a backend (address and port) go, in-dialog, only to
// the caller this node's signed Record-Route token names, and initially
// only to destinations the configuration allows. See README.md.
//
// The package owns the stage's declaration (Def), its Config ([dispatcher])
// and its compiled, shared form (Route, a pipeline.StageMaker). The backend
// set and its health prober are pipeline's (pipeline.Backends,
// pipeline.Prober): the stage only reads the set's snapshot, once per batch.
//
// route may import pipeline, pipeline/node and sipcore only; it must never
// import appliance, tools, bench, another stage or a port: the chain file
// (pipeline/chain) is what puts stages together.
package route

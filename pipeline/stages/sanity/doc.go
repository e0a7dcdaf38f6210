// Package sanity is the stage that parses every message and applies RFC
// 3261 16.3's checks that need no routing decision: syntax (400, 505,
// 513 or a silent drop, as sipcore.ResponseFor says), URI scheme (416),
// Proxy-Require (420), and the ACK of a response this node generated
// (absorbed). Max-Forwards (483) and loops (482) are found later, by the
// route stage's sipcore.BuildForward. See README.md.
//
// The package owns the stage's declaration (Def), its Config and its
// compiled, shared form (Sanity, a pipeline.StageMaker). It has no section
// of its own: it needs only the node's key ([node] secret).
//
// sanity may import pipeline, pipeline/node and sipcore only; it must never
// import appliance, tools, bench, another stage or a port: the chain file
// (pipeline/chain) is what puts stages together.
package sanity

// Package response is the stage that forwards responses statelessly (RFC
// 3261 16.7, 16.11): our Via must be on top; it is removed and the
// response goes where the next Via says. Requests pass on. See README.md.
//
// The package owns the stage's declaration (Def), its Config and its
// compiled, shared form (Response, a pipeline.StageMaker). It has no
// section of its own: it needs only the node's key ([node] secret), which
// checks that the top Via's branch is ours.
//
// response may import pipeline, pipeline/node and sipcore only; it must
// never import appliance, tools, bench, another stage or a port: the chain
// file (pipeline/chain) is what puts stages together.
package response

// Package self is the stage that answers requests addressed to the
// appliance itself: OPTIONS gets 200 (the keepalive ping of peers and load
// balancers), anything else 404 (483 when Max-Forwards is spent), ACK is
// absorbed. See README.md.
//
// The package owns the stage's declaration (Def), its Config (the node,
// the Allow and Accept of the answer to OPTIONS) and its compiled, shared
// form (Self, a pipeline.StageMaker). It has no section of its own: what
// "the appliance itself" means comes from [node] addresses and the SIP
// port.
//
// self may import pipeline, pipeline/node and sipcore only; it must never
// import appliance, tools, bench, another stage or a port: the chain file
// (pipeline/chain) is what puts stages together.
package self

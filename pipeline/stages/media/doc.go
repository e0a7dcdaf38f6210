// Package media anchors calls' media on external relays (rtpengine, ng
// protocol): the request side of [media], the shared relay set and the
// ng helpers of both sides. See README.md for the configuration, the
// metrics and where the stages sit in the chain.
//
// Two stages, because offers and answers travel different ways through
// the chain: "media" (requests) sits after auth and before route, so only
// admitted calls take relay ports; "mediaanswer" (responses, declared in
// package mediaanswer, made here by Media.Answer) sits before the
// response stage, where responses end. An offer (INVITE, UPDATE, PRACK
// with SDP) or an answer (18x, 2xx with SDP) is parked while one of the
// worker's helpers asks the call's relay; Resume writes the relay's SDP
// into the message (sipcore.BuildWithBody: Content-Length follows the
// new body, into a per-worker buffer) and the chain goes on. BYE, CANCEL
// and final failures to INVITE send a delete without parking. So does an
// initial INVITE that a later stage answers itself after its offer was
// anchored (location's 404/480/503, route's 503): no response comes back
// through mediaanswer for it, and the stage hears of it as a
// pipeline.Refuser.
//
// A call's relay is chosen from its Call-ID by the dispatcher's weighted
// rendezvous hashing (pipeline.Backends, called into, not copied): every
// node picks the same relay with no shared state. Relays are pinged and
// marked down and up; the calls a relay carried when it went down are
// counted and logged. The set can be replaced while running
// (ReplaceRelays: relays named in the DNS, refreshed by the appliance),
// keeping the state of the relays it keeps.
//
// The ng dictionary is encoded on the worker, straight into a per-worker
// job (no allocation); the helper goroutine adds the cookie, sends,
// retransmits and copies the relay's SDP back into the job. Worker and
// helper hand a job over through one atomic word holding its generation
// and state, so a helper late past the deadline can never write into a
// job the worker has reused.
//
// media may import pipeline (and its FuncHelper), sipcore, media/ng and
// mediaanswer (for its declaration); it must never import appliance,
// tools, bench, afxdp, a port or another stage.
package media

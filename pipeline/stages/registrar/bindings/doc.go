// Package bindings owns the registrar's data: a Binding (RFC 3261 10.3,
// RFC 3327 Path, RFC 5626 +sip.instance/reg-id), the Store that keeps the
// bindings of every address-of-record (Memory for tests and a single node,
// Redis for a cluster of edges, standalone or Redis Cluster), the rules a
// REGISTER's changes are applied by (Call-ID/CSeq ordering, max contacts,
// refresh without rewrite), and Mailbox, which hands a helper's immutable
// results to the worker that parked the message.
//
// Both the registrar stage (writes) and the location stage (reads) use it.
// It imports sipcore only for the registrar's SIP parsing helpers; it must
// not import pipeline, a stage or appliance.
package bindings

// Package sipcore parses and builds SIP messages (RFC 3261) for a stateless
// edge proxy, and verifies HTTP digest credentials (RFC 7616, RFC 8760,
// RFC 2617 compatibility).
//
// It owns: the datagram parser (Parse into a caller-owned Msg of offsets into
// the caller's buffer), URI parsing, the stateless response, request-forward
// and response-forward builders (writing into caller-provided buffers), the
// parse errors and the SIP response each maps to, and digest
// parsing/verification with stateless nonces.
//
// Parse is a proxy's parser (RFC 3261 16.3: the components a proxy uses
// MUST be well-formed, any others SHOULD be ignored and forwarded
// unchanged). It validates eagerly the start line and Request-URI, Via,
// the From and To tags, Call-ID, CSeq, Max-Forwards, Content-Length,
// Route, and indexes Authorization, Proxy-Authorization, Require and
// Proxy-Require; it only splits Contact and Record-Route into values and
// only locates the tag and parameters of From and To. Display names and
// URIs of From, To, Contact and Record-Route (NameAddr.Parsed false) are
// parsed on demand by Msg.ParseAddress (one value) or Msg.Validate (all,
// first error in message order, the same error kinds as the eager path).
// A registrar or anything else that reads those calls one of them first.
//
// Everything on the per-packet path allocates nothing: errors are values
// allocated once at init, and all output goes to buffers the caller owns.
//
// sipcore must not import any other package of this module: it is the leaf
// every other part builds on, and it must stay usable and testable alone.
// (Its tests use sipcore/shareddata, a standard-library-only helper that
// imports nothing of the module, to find the shared test data.)
package sipcore

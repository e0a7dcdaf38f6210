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
// Everything on the per-packet path allocates nothing: errors are values
// allocated once at init, and all output goes to buffers the caller owns.
//
// sipcore must not import any other package of this module: it is the leaf
// every other part builds on, and it must stay usable and testable alone.
package sipcore

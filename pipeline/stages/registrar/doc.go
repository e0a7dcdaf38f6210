// Package registrar is the registrar stage (RFC 3261 10, RFC 3327 Path,
// RFC 5626 basics): it answers REGISTER for the cluster's domains after
// the auth stage has authenticated it. Checks that need no store (400,
// 404, 423 with Min-Expires) are made on the worker; the bindings are
// written off the hot path by a per-worker helper (park/resume, a bounded
// queue, the deadline and 503 fallback rules of auth), and the 200 —
// listing every current binding with its expiry — is sent only once the
// store has them. See README.md.
//
// The bindings and their stores are in bindings (shared with the
// location stage). registrar imports pipeline, sipcore and bindings; it
// must not import another stage, appliance or a port.
package registrar

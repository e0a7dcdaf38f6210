// Package mediaanswer declares the response side of the media stage: SDP
// answers (183 and 2xx to INVITE, UPDATE, PRACK) parked while the relay
// anchors them, and final failures to INVITE deleting the call on it.
//
// It is a stage of its own because it must sit before the response
// stage (responses end there: it forwards them), whereas offers must be
// anchored only after auth has admitted the request. The implementation
// lives in package media, which shares its relay set, ng clients and
// counters of errors between both sides; this package holds only the
// declaration, so the chain file names it like every other stage.
//
// mediaanswer imports pipeline only; it must not import media, appliance,
// a port or another stage.
package mediaanswer

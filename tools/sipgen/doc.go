// Package sipgen generates synthetic SIP traffic as Ethernet/IPv4 or IPv6
// UDP frames, deterministically from a seed: the Go API behind bin/sipgen,
// which tests and benchmarks use to generate in memory.
//
// What it models: the capture is what arrives at the appliance (the proxy)
// from outside. Callers send INVITE (with SDP), ACK, BYE, CANCEL, REGISTER
// and OPTIONS to the proxy. The proxy's own answers are not in the capture
// (except the 401 challenges with Config.Challenges, for humans). With
// Config.Responses the backend's responses (100, 180, 200 with SDP, 487, 200
// to BYE and CANCEL) are included, addressed to the proxy, each computed by
// forwarding the caller's request with sipcore.BuildForward under the
// appliance's ForwardOptions (Key from the cluster secret, SentBy = the
// proxy's address:port, Record-Route when configured) and answering the
// forwarded request with sipcore.BuildResponse: so the top Via carries a
// branch the appliance recognises as its own when it holds the same secret.
//
// REGISTER flows are digest-authenticated: the first REGISTER carries no
// credentials, the retry answers a challenge whose nonce is made with
// sipcore.NonceKey from the same secret at the challenge's timestamp, with
// qop=auth and MD5 or SHA-256, from the user's HA1. Abuse mixes: REGISTER
// floods (brute-force digest attempts from a few sources), scanner sweeps
// (friendly-scanner / sipvicious-style OPTIONS and INVITE to successive
// extensions) and malformed messages, each of which sipcore.Parse refuses.
//
// # Users file
//
// Generator.WriteUsers writes the subscribers of the traffic, one per line:
//
//	# comment (from '#' to the end of a line; blank lines are ignored)
//	username realm HA1-MD5 HA1-SHA-256
//	200000 sipedge 5f0d...32 hex digits... 9a1c...64 hex digits...
//
// Fields are separated by spaces or tabs; username and realm contain no
// whitespace and no '#'. HA1-MD5 is hex(MD5(username:realm:password)), 32
// lowercase hex digits; HA1-SHA-256 is hex(SHA-256(username:realm:password)),
// 64 digits (RFC 7616 3.4.2; sipcore.HA1 computes both). Passwords are never
// written. ReadUsers parses the format and names the line of any error.
//
// Memory is bounded by the flows open at once (about CPS x Hold calls), not
// by the number of frames: every message is regenerated from its flow's
// seed when it is due, and written as soon as it is made.
//
// sipgen may import sipcore and afxdp/frame; nothing in the product may
// import it.
package sipgen

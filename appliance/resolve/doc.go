// Package resolve finds SIP servers by RFC 3263: a configured name (a SIP
// URI, a domain, or host:port) becomes targets, each an address and port
// with the RFC 2782 priority and weight of the record it came from, by
// NAPTR, then SRV, then A/AAAA. Numeric hosts and explicit ports skip the
// lookups RFC 3263 says they skip. It asks the DNS itself
// (github.com/miekg/dns) rather than through net.LookupSRV, which
// shuffles records at random: a stateless edge needs every node to see
// the same records in the same form so that they hash a Call-ID to the
// same backend. The steps are those of SIP over UDP (Service SIPUDP)
// unless the Resolver's Config names another Service: NGUDP, for
// rtpengine ng relays, skips NAPTR and asks SRV _ng._udp, then A/AAAA on
// 2223.
//
// The package owns the lookups (Resolver), the parsing of what the
// configuration names (ParseName) and the refresh loop (Watcher): each
// name is looked up again when its records' TTL runs out (clamped to a
// floor and a ceiling), a failed or empty lookup keeps the name's last
// good targets (counted and logged), and a changed set is handed to the
// caller's publish function in one piece, for an atomic swap.
//
// resolve runs beside the workers, never on a per-message path. It may
// import sipcore (nothing of it yet) and the standard library; it must not
// import pipeline, a stage or appliance, so the dispatcher's backends and
// the media relays can both use it.
package resolve

// Command sipreplay replays the SIP datagrams of a capture onto the wire
// or through the appliance's pipeline (see package sipedge/tools/replay and
// `sipreplay -h`).
package main

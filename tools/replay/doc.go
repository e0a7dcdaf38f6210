// Package replay replays the SIP datagrams of captures: onto the wire
// (UDP to one address, AF_XDP when its port lands), into a pcap file, or
// through the appliance's pipeline in-process. It is the library behind
// bin/sipreplay.
//
// It owns: the SIP filter (UDP datagrams that look like SIP, or that use a
// SIP port), pacing (the capture's own timing scaled by a speed, a fixed
// rate, or as fast as possible), looping with per-loop Call-ID
// uniquification, source/destination address rewriting, the progress
// display (a bar on a terminal, plain periodic lines otherwise), and the
// summary (a table, and JSON for machines).
//
// The pipeline mode builds the daemon's own pipeline with appliance's
// NewBackends, NewProxy and NewWorker (never a copy of them), so that a
// replay measures what the daemon runs.
//
// replay may import sipedge (the embedded config.toml), appliance and
// appliance/config, sipcore, afxdp/frame, afxdp/neigh, pipeline (with
// pipeline/memport, pipeline/port/xdpport and pipeline/port/capture) and
// tools/sipgen (its default secret); nothing in the product may import it.
package replay

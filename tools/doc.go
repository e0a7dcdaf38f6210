// Package tools holds operator tools: sipgen (synthetic call-flow captures)
// and sipreplay (replay a capture into the pipeline or onto the wire), each
// under tools/cmd.
//
// Tools may import sipcore, pipeline and afxdp, and (commands and
// tools/replay only) appliance, to run the daemon's own pipeline; nothing in
// the product may import tools.
package tools

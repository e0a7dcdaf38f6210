package appliance

import "sipedge/pipeline/port/xdpport"

// writeLargeMetrics adds the afxdp ports' large path: SIP above a UMEM
// frame, carried in separate buffers through the kernel sockets.
func writeLargeMetrics(p promWriter, xdp []xdpport.Stats) {
	var rx, tx, nobuf uint64
	for _, s := range xdp {
		rx += s.LargeReceived
		tx += s.LargeSent
		nobuf += s.LargeNoBuffer
	}
	p.counter("sipedge_afxdp_large_received_total", "Datagrams larger than a UMEM frame received whole (reassembled by the kernel).", rx)
	p.counter("sipedge_afxdp_large_sent_total", "Messages larger than a UMEM frame sent through the kernel socket.", tx)
	p.counter("sipedge_afxdp_large_no_buffer_total", "Times the afxdp port's large buffers were all in use (send refused, or a read deferred).", nobuf)
}

package pipeline

import "sipedge/pipeline/port"

// TxSlack is what a stage may add to the message it answers or forwards
// (a Via, a Record-Route, a P-Asserted-Identity, a rewritten SDP line):
// TxBuf's buffer holds at least the message's length plus TxSlack when
// the port can give one that large. Smaller than a frame's spare room
// for MTU-sized messages in 2 KiB frames, so those keep ring frames.
const TxSlack = 512

// fitTx swaps p, a transmit buffer from takeTx, for one of the port's
// large buffers when p cannot hold need bytes and the port has them
// (port.LargeAllocator: afxdp frames are at most a page, while SIP goes
// up to [guard] max_message_size). The small buffer becomes the spare.
// Without a large buffer p stays: the stage's build fails and is counted,
// as it would have been.
func (w *Worker) fitTx(p *port.Packet, need int) {
	if cap(p.Payload) >= need || w.large == nil {
		return
	}
	var big port.Packet
	if !w.large.AllocLarge(&big, need) {
		return
	}
	w.spare, w.hasSpare = *p, true
	w.spare.Payload = w.spare.Payload[:0]
	*p = big
}

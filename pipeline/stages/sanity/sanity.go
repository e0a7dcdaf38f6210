package sanity

import (
	"errors"
	"fmt"

	"sipedge/pipeline"
	"sipedge/pipeline/node"
	"sipedge/sipcore"
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name: "sanity",
	Doc:  "parse; 400/416/420/505/513 for broken requests, drop broken responses and ACKs of our own answers",
}

// Config configures the stage: it has no section of its own, only the
// node's identity ([node]).
type Config struct {
	Node *node.Node
	// MaxMessageSize is the longest datagram served, in bytes ([guard]
	// max_message_size); a longer request is answered 513 when its Via can
	// be read, dropped as too-large otherwise. 0: sipcore.MaxMessageSize.
	MaxMessageSize int
}

// Sanity is the compiled Config, shared by every worker's stage.
type Sanity struct {
	n   *node.Node
	max int
}

// New checks cfg.
func New(cfg Config) (*Sanity, error) {
	if cfg.Node == nil {
		return nil, errors.New("sanity: Node is required")
	}
	if cfg.MaxMessageSize < 0 || cfg.MaxMessageSize > sipcore.MaxMessageSize {
		return nil, fmt.Errorf("sanity: MaxMessageSize %d: want 0 (no limit but UDP's) to %d bytes", cfg.MaxMessageSize, sipcore.MaxMessageSize)
	}
	max := cfg.MaxMessageSize
	if max == 0 {
		max = sipcore.MaxMessageSize
	}
	return &Sanity{n: cfg.Node, max: max}, nil
}

// Def implements pipeline.StageMaker.
func (*Sanity) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker.
func (s *Sanity) NewStage(*pipeline.Env) (pipeline.Stage, error) {
	return &stage{key: s.n.Key, max: s.max}, nil
}

type stage struct {
	key     *sipcore.Key
	max     int
	scratch [1024]byte // Unsupported header of a 420, per worker
}

func (s *stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	if len(c.Buf) > s.max || c.Truncated {
		if v, ok := c.RespondTooLarge(s.max); ok {
			return v
		}
		return c.Drop(pipeline.DropTooLarge)
	}
	if err := c.Parse(); err != nil {
		status, reason := sipcore.ResponseFor(m, err)
		// Without a Via a response has nowhere to go but the source port,
		// which need not be a SIP peer at all: drop instead of reflecting.
		if status == 0 || m.NVia == 0 {
			return c.Drop(pipeline.DropUnparsable)
		}
		return c.Respond(status, reason, nil)
	}
	if !m.IsRequest {
		return pipeline.Continue
	}
	// The ACK of a non-2xx response this node generated (a 503, a 407...)
	// ends here: its To-tag is ours, derived again without state.
	if m.Method == sipcore.MethodACK && s.key.IsOwnToTag(m) {
		return c.Drop(pipeline.DropAckToSelf)
	}
	if m.RURI.Scheme == sipcore.SchemeOther {
		return c.Respond(416, "Unsupported URI Scheme", nil)
	}
	if m.ProxyRequire >= 0 {
		if n := s.unsupported(m); n > 0 {
			return c.Respond(420, "Bad Extension", s.scratch[:n])
		}
	}
	return pipeline.Continue
}

// unsupported writes "Unsupported: <every Proxy-Require option>\r\n" into
// scratch (we support none) and returns its length, 0 when the headers
// list no option. Options that would not fit are left out.
func (s *stage) unsupported(m *sipcore.Msg) int {
	const prefix = "Unsupported: "
	b := s.scratch[:]
	n := copy(b, prefix)
	for i := m.Next(sipcore.HdrProxyRequire, 0); i >= 0; i = m.Next(sipcore.HdrProxyRequire, i+1) {
		v := m.B(m.Headers[i].Value)
		for len(v) > 0 {
			var opt []byte
			if k := indexByte(v, ','); k >= 0 {
				opt, v = v[:k], v[k+1:]
			} else {
				opt, v = v, nil
			}
			opt = trimSpace(opt)
			if len(opt) == 0 {
				continue
			}
			need := len(opt) + 2 + 2 // ", " and the final CRLF
			if n+need > len(b) {
				break
			}
			if n > len(prefix) {
				n += copy(b[n:], ", ")
			}
			n += copy(b[n:], opt)
		}
	}
	if n == len(prefix) {
		return 0
	}
	n += copy(b[n:], "\r\n")
	return n
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

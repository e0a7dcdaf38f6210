package response

import (
	"errors"

	"sipedge/pipeline"
	"sipedge/pipeline/node"
	"sipedge/sipcore"
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name: "response",
	Doc:  "responses: check and pop our Via, forward to the next Via",
}

// Config configures the stage: only the node's identity ([node]).
type Config struct {
	Node *node.Node
}

// Response is the compiled Config, shared by every worker's stage.
type Response struct{ key *sipcore.Key }

// New checks cfg.
func New(cfg Config) (*Response, error) {
	if cfg.Node == nil {
		return nil, errors.New("response: Node is required")
	}
	return &Response{key: cfg.Node.Key}, nil
}

// Def implements pipeline.StageMaker.
func (*Response) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker.
func (r *Response) NewStage(*pipeline.Env) (pipeline.Stage, error) { return stage{key: r.key}, nil }

type stage struct{ key *sipcore.Key }

func (s stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	if m.IsRequest {
		return pipeline.Continue
	}
	b := c.TxBuf()
	if b == nil {
		return c.Drop(pipeline.DropNoTxBuffer)
	}
	var hop sipcore.NextHop
	n, err := sipcore.BuildResponseForward(b, m, s.key, &hop)
	switch {
	case err == nil:
	case err == sipcore.ErrNotOurVia:
		return c.Drop(pipeline.DropResponseNotOurs)
	case err == sipcore.ErrNoNextVia:
		return c.Drop(pipeline.DropResponseNoNextVia)
	default:
		return c.Drop(pipeline.DropBuildFailed)
	}
	if !hop.Addr.IsValid() {
		return c.Drop(pipeline.DropUnresolved)
	}
	return c.Send(hop.Addr, n)
}

package self

import (
	"errors"

	"sipedge/pipeline"
	"sipedge/pipeline/node"
	"sipedge/sipcore"
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name: "self",
	Doc:  "requests to the node itself: 200 to OPTIONS, 404/483 to the rest",
}

// Config configures the stage.
type Config struct {
	Node *node.Node
	// Allow and Accept are the values of our answer to OPTIONS.
	Allow, Accept string
	// PassRegister leaves REGISTER to the node itself to the registrar
	// stage after it (phones commonly register at the node's address).
	PassRegister bool
}

// Self is the compiled Config, shared by every worker's stage.
type Self struct {
	n            *node.Node
	optionsExtra []byte
	passRegister bool
}

// New checks cfg and fills in the defaults.
func New(cfg Config) (*Self, error) {
	if cfg.Node == nil {
		return nil, errors.New("self: Node is required")
	}
	if cfg.Allow == "" {
		cfg.Allow = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY, SUBSCRIBE, MESSAGE, REGISTER"
	}
	if cfg.Accept == "" {
		cfg.Accept = "application/sdp"
	}
	return &Self{n: cfg.Node, optionsExtra: []byte("Allow: " + cfg.Allow + "\r\nAccept: " + cfg.Accept + "\r\n"), passRegister: cfg.PassRegister}, nil
}

// Def implements pipeline.StageMaker.
func (*Self) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker.
func (s *Self) NewStage(*pipeline.Env) (pipeline.Stage, error) { return stage{s}, nil }

type stage struct{ *Self }

func (s stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	buf := m.Buf()
	if !s.n.IsSelf(buf, &m.RURI) {
		return pipeline.Continue
	}
	routes := m.NRoute
	if routes > 0 && s.n.IsLocal(buf, &m.Routes[0].URI) {
		routes--
	}
	if routes > 0 {
		return pipeline.Continue // a Route to follow
	}
	switch m.Method {
	case sipcore.MethodREGISTER:
		if s.passRegister {
			return pipeline.Continue
		}
	case sipcore.MethodOPTIONS:
		return c.Respond(200, "OK", s.optionsExtra)
	case sipcore.MethodACK:
		return c.Drop(pipeline.DropAckToSelf)
	}
	if m.MaxForwards == 0 {
		return c.Respond(483, "Too Many Hops", nil)
	}
	return c.Respond(404, "Not Found", nil)
}

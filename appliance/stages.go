package appliance

import (
	"fmt"

	"sipedge/pipeline"
)

// Extra are a worker's stages that the proxy does not make: the guard and
// the auth stages, each nil when its section is disabled.
type Extra struct {
	// Guard is the worker's guard stage (guard.Guard.NewStage).
	Guard pipeline.Stage
	// Auth are the worker's "auth" and "auth-resume" stages
	// (auth.Auth.Stages), in that order.
	Auth []pipeline.Stage
}

// Stages returns fresh stage instances for one worker, in the order every
// message runs through them. This is the one place the pipeline is
// declared: a new stage is one line here.
//
//	guard       (pipeline/guard, [guard] enabled): size, per-source rates,
//	            scanner signatures, bans; before parsing, so that a flood
//	            costs as little as possible
//	sanity      parse, 400/416/420/513
//	response    pop our Via, forward the response
//	self        OPTIONS to us, 404/483 for other requests to us
//	auth        (pipeline/auth, [auth] enabled): digest challenge/verify of
//	auth-resume initial requests, after self so that keepalive OPTIONS need
//	            no credentials; auth-resume finishes parked messages
//	route       dispatcher (Call-ID hash) or loose route
func Stages(p *pipeline.Proxy, x Extra) ([]pipeline.Stage, error) {
	byName := map[string]pipeline.Stage{}
	for _, s := range p.Stages() {
		byName[s.Name()] = s
	}
	get := func(name string) (pipeline.Stage, error) {
		s, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("appliance: the proxy has no %q stage: update appliance.Stages to the pipeline's stage names", name)
		}
		delete(byName, name)
		return s, nil
	}
	var out []pipeline.Stage
	if x.Guard != nil {
		out = append(out, x.Guard)
	}
	for _, name := range []string{"sanity", "response", "self", "route"} {
		if name == "route" {
			if len(x.Auth) != 0 && len(x.Auth) != 2 {
				return nil, fmt.Errorf("appliance: %d auth stages given, want the two of auth.Auth.Stages (auth, auth-resume)", len(x.Auth))
			}
			out = append(out, x.Auth...)
		}
		s, err := get(name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(byName) > 0 {
		for name := range byName {
			return nil, fmt.Errorf("appliance: the proxy offers a %q stage that appliance.Stages does not place: add it to the list", name)
		}
	}
	return out, nil
}

package appliance

import (
	"fmt"

	"sipedge/pipeline"
)

// Stages returns fresh stage instances for one worker, in the order every
// message runs through them. This is the one place the pipeline is
// declared: a new stage is one line here.
//
//	guard    (pipeline/guard, to come): size, per-source rates, scanner
//	         signatures; before parsing, so a flood costs as little as possible
//	sanity   parse, 400/416/420/513
//	response pop our Via, forward the response
//	self     OPTIONS to us, 404/483 for other requests to us
//	auth     (pipeline/auth, to come): digest challenge/verify of initial
//	         requests, after self so keepalive OPTIONS need no credentials
//	route    dispatcher (Call-ID hash) or loose route
func Stages(p *pipeline.Proxy) ([]pipeline.Stage, error) {
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
	for _, name := range []string{"sanity", "response", "self", "route"} {
		// guard goes before "sanity"; auth before "route".
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

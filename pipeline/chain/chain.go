package chain

import (
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/guard"
	"sipedge/pipeline/stages/location"
	"sipedge/pipeline/stages/registrar"
	"sipedge/pipeline/stages/response"
	"sipedge/pipeline/stages/route"
	"sipedge/pipeline/stages/sanity"
	"sipedge/pipeline/stages/self"
)

// Default is the chain: every stage a message can meet, in the order it
// meets them, one line each. The daemon, sipreplay --into pipeline, the
// benchmarks and the tests all build their workers from it; a stage whose
// section is disabled is left out where it stands. A new stage is its
// package and one line here.
var Default = Chain{
	&guard.Def,    // before the parser: a flood costs as little as possible
	&sanity.Def,   // parse; everything after sees a parsed message
	&response.Def, // responses end here
	&self.Def,     // requests to the node; before auth, so keepalive OPTIONS need no credentials
	&auth.Def,     // initial requests from outside authenticate
	// REGISTER for our domains, once authenticated; then requests for
	// them go to a registered contact, before the dispatcher decides.
	&registrar.Def,
	&location.Def,
	&route.Def, // the dispatcher: last, it forwards
}

package chain

import (
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/drain"
	"sipedge/pipeline/stages/guard"
	"sipedge/pipeline/stages/location"
	"sipedge/pipeline/stages/media"
	"sipedge/pipeline/stages/mediaanswer"
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
	&guard.Def,       // before the parser: a flood costs as little as possible
	&sanity.Def,      // parse; everything after sees a parsed message
	&drain.Def,       // while draining, new INVITEs are refused; before response, so a call's responses count as its traffic
	&mediaanswer.Def, // SDP answers: before response, where responses end
	&response.Def,    // responses end here
	&self.Def,        // requests to the node; before auth, so keepalive OPTIONS need no credentials
	&auth.Def,        // initial requests from outside authenticate
	&registrar.Def,   // REGISTER for our domains, once authenticated
	&media.Def,       // SDP offers: after auth (only admitted calls take relay ports), before location and route forward
	&location.Def,    // requests for our domains go to a registered contact, before the dispatcher decides
	&route.Def,       // the dispatcher: last, it forwards
}

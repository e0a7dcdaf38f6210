package mediaanswer

import "sipedge/pipeline"

// FallbackReasons label the fallback counter, as media's request side.
var FallbackReasons = []string{"relay-error", "timeout", "no-relay", "jobs-full", "too-large", "unknown-call"}

// Def declares the response side of [media]; media.Media.Answer makes it.
var Def = pipeline.StageDef{
	Name:    "mediaanswer",
	Doc:     "responses: SDP answers (183, 2xx), and a late offer's 2xx (its offer, by our Via's mark), parked while the media relay anchors them; final failures to INVITE delete the call on the relay",
	Section: "[media]",
	Parks:   true,
	Drops:   []string{"relay-unavailable"},
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_media_answers_parked_total", Help: "Responses with SDP parked for a relay: answers, and 2xx carrying a late offer."},
		{Name: "sipedge_media_answers_rewritten_total", Help: "Responses forwarded with the relay's SDP."},
		{Name: "sipedge_media_response_deletes_total", Help: "Deletes sent to a relay for final failure responses to INVITE."},
		{Name: "sipedge_media_answers_not_anchored_total", Help: "Responses with SDP going to a destination that is not anchored (anchor = \"sources\"), and late offers in a reliable 1xx."},
		{Name: "sipedge_media_answer_fallbacks_total", Help: "Answers the relay did not anchor, by reason; the response got the fallback (dropped, or unchanged SDP).", Label: "reason", Values: FallbackReasons},
	},
}

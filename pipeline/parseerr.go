package pipeline

import "sipedge/sipcore"

// parseErrKinds are the sipcore parse rules counted one by one; anything
// else (a rule added to sipcore and not listed here) lands in "other", so
// a new rule is never lost, only lumped together until it is listed.
var parseErrKinds = [...]*sipcore.ErrKind{
	sipcore.ErrMessageTooLarge, sipcore.ErrTooManyHeaders, sipcore.ErrTooManyVias,
	sipcore.ErrTooManyContacts, sipcore.ErrTooManyRoutes, sipcore.ErrTooManyRRoutes,
	sipcore.ErrLineTooLong, sipcore.ErrStartLine, sipcore.ErrRequestLine,
	sipcore.ErrRequestURI, sipcore.ErrRequestURIHdrs, sipcore.ErrVersion,
	sipcore.ErrStatusLine, sipcore.ErrStatusCode, sipcore.ErrHeaderLine,
	sipcore.ErrNoHeaderEnd, sipcore.ErrBadURI, sipcore.ErrStarContact,
	sipcore.ErrCSeqMismatch, sipcore.ErrBadVia, sipcore.ErrBadFrom, sipcore.ErrBadTo,
	sipcore.ErrBadCallID, sipcore.ErrBadCSeq, sipcore.ErrBadMaxForwards,
	sipcore.ErrBadContact, sipcore.ErrBadRoute, sipcore.ErrBadRecordRoute,
	sipcore.ErrBadContentLength, sipcore.ErrContentLengthExceeds, sipcore.ErrDupFrom,
	sipcore.ErrDupTo, sipcore.ErrDupCallID, sipcore.ErrDupCSeq, sipcore.ErrDupMaxForwards,
	sipcore.ErrDupContentLength, sipcore.ErrMissingVia, sipcore.ErrMissingFrom,
	sipcore.ErrMissingTo, sipcore.ErrMissingCallID, sipcore.ErrMissingCSeq,
}

// NumParseErrors is the size of Stats.ParseErrors: every listed rule and
// "other" last.
const NumParseErrors = len(parseErrKinds) + 1

// ParseErrorName is the metrics label of Stats.ParseErrors[i]: the sipcore
// rule name, or "other".
func ParseErrorName(i int) string {
	if i >= 0 && i < len(parseErrKinds) {
		return parseErrKinds[i].Rule
	}
	return "other"
}

// parseErrIndex maps a Parse error to its counter. A linear scan: it runs
// only for malformed messages, and a map lookup would cost about as much.
func parseErrIndex(err error) int {
	var k *sipcore.ErrKind
	switch e := err.(type) {
	case *sipcore.ParseError:
		k = e.Kind
	case *sipcore.ErrKind:
		k = e
	}
	for i, x := range parseErrKinds {
		if x == k {
			return i
		}
	}
	return len(parseErrKinds)
}

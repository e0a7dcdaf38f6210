package sipcore

import "strconv"

// ErrKind is one rule of the grammar or of the proxy's limits that a message
// can break. Every kind is a package-level value allocated once; compare
// with errors.Is.
type ErrKind struct {
	// Rule names what broke, for logs and metrics labels ("content-length-exceeds-datagram").
	Rule string
	// Status is the SIP response a proxy sends for a request breaking this
	// rule; 0 means drop silently. Responses are never answered, whatever
	// the kind: see ResponseFor.
	Status int
	// Reason is the reason phrase of that response, naming the problem.
	Reason string

	index int // position in ParseRules + 1; 0 for the kinds Parse never returns
}

func (k *ErrKind) Error() string { return "sip: " + k.Rule }

// ParseError is what Parse returns: which rule broke and at which byte
// offset. It lives inside the Msg, so returning it allocates nothing; it is
// valid until the Msg is parsed again.
type ParseError struct {
	Kind   *ErrKind
	Offset int
}

func (e *ParseError) Error() string {
	return "sip: " + e.Kind.Rule + " at byte " + strconv.Itoa(e.Offset)
}

// Unwrap lets errors.Is(err, sipcore.ErrBadCSeq) work.
func (e *ParseError) Unwrap() error { return e.Kind }

// Every rule Parse enforces, with the response a stateless proxy sends for a
// request that breaks it. Status 0 means the datagram is dropped silently
// (and counted by the caller): nothing trustworthy to answer to.
var (
	// Size and count limits (Msg's index arrays and MaxLineLength). 513 is
	// "Message Too Large" (RFC 3261 21.5.14): the limit is ours, not the
	// grammar's.
	ErrMessageTooLarge = parseRule(&ErrKind{Rule: "message-too-large", Status: 513, Reason: "Message Too Large"})
	ErrTooManyHeaders  = parseRule(&ErrKind{Rule: "too-many-headers", Status: 513, Reason: "Message Too Large (too many headers)"})
	ErrTooManyVias     = parseRule(&ErrKind{Rule: "too-many-via", Status: 513, Reason: "Message Too Large (too many Via values)"})
	ErrTooManyContacts = parseRule(&ErrKind{Rule: "too-many-contact", Status: 513, Reason: "Message Too Large (too many Contact values)"})
	ErrTooManyRoutes   = parseRule(&ErrKind{Rule: "too-many-route", Status: 513, Reason: "Message Too Large (too many Route values)"})
	ErrTooManyRRoutes  = parseRule(&ErrKind{Rule: "too-many-record-route", Status: 513, Reason: "Message Too Large (too many Record-Route values)"})
	ErrLineTooLong     = parseRule(&ErrKind{Rule: "line-too-long", Status: 513, Reason: "Message Too Large (header line too long)"})

	// Start line. A first line that is neither a request line nor a status
	// line gives no reason to believe a SIP peer is listening: drop.
	ErrStartLine      = parseRule(&ErrKind{Rule: "malformed-start-line", Status: 0})
	ErrRequestLine    = parseRule(&ErrKind{Rule: "malformed-request-line", Status: 400, Reason: "Bad Request (malformed Request-Line)"})
	ErrRequestURI     = parseRule(&ErrKind{Rule: "malformed-request-uri", Status: 400, Reason: "Bad Request (malformed Request-URI)"})
	ErrRequestURIHdrs = parseRule(&ErrKind{Rule: "request-uri-with-headers", Status: 400, Reason: "Bad Request (headers in Request-URI)"})
	ErrVersion        = parseRule(&ErrKind{Rule: "unsupported-sip-version", Status: 505, Reason: "Version Not Supported"})
	ErrStatusLine     = parseRule(&ErrKind{Rule: "malformed-status-line", Status: 0})
	ErrStatusCode     = parseRule(&ErrKind{Rule: "status-code-out-of-range", Status: 0})

	// Header section framing.
	ErrHeaderLine   = parseRule(&ErrKind{Rule: "malformed-header-line", Status: 400, Reason: "Bad Request (malformed header line)"})
	ErrNoHeaderEnd  = parseRule(&ErrKind{Rule: "header-section-not-terminated", Status: 400, Reason: "Bad Request (header section not terminated)"})
	ErrBadURI       = parseRule(&ErrKind{Rule: "malformed-uri", Status: 400, Reason: "Bad Request (malformed URI)"})
	ErrStarContact  = parseRule(&ErrKind{Rule: "star-contact-mixed", Status: 400, Reason: "Bad Request (Contact * with other values)"})
	ErrCSeqMismatch = parseRule(&ErrKind{Rule: "cseq-method-mismatch", Status: 400, Reason: "Bad Request (CSeq method does not match Request-Line)"})

	// Malformed values of the headers the proxy reads.
	ErrBadVia           = parseRule(&ErrKind{Rule: "malformed-via", Status: 400, Reason: "Bad Request (malformed Via)"})
	ErrBadFrom          = parseRule(&ErrKind{Rule: "malformed-from", Status: 400, Reason: "Bad Request (malformed From)"})
	ErrBadTo            = parseRule(&ErrKind{Rule: "malformed-to", Status: 400, Reason: "Bad Request (malformed To)"})
	ErrBadCallID        = parseRule(&ErrKind{Rule: "malformed-call-id", Status: 400, Reason: "Bad Request (malformed Call-ID)"})
	ErrBadCSeq          = parseRule(&ErrKind{Rule: "malformed-cseq", Status: 400, Reason: "Bad Request (malformed CSeq)"})
	ErrBadMaxForwards   = parseRule(&ErrKind{Rule: "malformed-max-forwards", Status: 400, Reason: "Bad Request (malformed Max-Forwards)"})
	ErrBadContact       = parseRule(&ErrKind{Rule: "malformed-contact", Status: 400, Reason: "Bad Request (malformed Contact)"})
	ErrBadRoute         = parseRule(&ErrKind{Rule: "malformed-route", Status: 400, Reason: "Bad Request (malformed Route)"})
	ErrBadRecordRoute   = parseRule(&ErrKind{Rule: "malformed-record-route", Status: 400, Reason: "Bad Request (malformed Record-Route)"})
	ErrBadContentLength = parseRule(&ErrKind{Rule: "malformed-content-length", Status: 400, Reason: "Bad Request (malformed Content-Length)"})
	// RFC 3261 18.3: on UDP a Content-Length larger than the datagram is an
	// error (400); a smaller one truncates the message.
	ErrContentLengthExceeds = parseRule(&ErrKind{Rule: "content-length-exceeds-datagram", Status: 400, Reason: "Bad Request (Content-Length larger than datagram)"})

	// Single-valued headers given more than once (RFC 4475 multi01, mcl01).
	ErrDupFrom          = parseRule(&ErrKind{Rule: "duplicate-from", Status: 400, Reason: "Bad Request (multiple From)"})
	ErrDupTo            = parseRule(&ErrKind{Rule: "duplicate-to", Status: 400, Reason: "Bad Request (multiple To)"})
	ErrDupCallID        = parseRule(&ErrKind{Rule: "duplicate-call-id", Status: 400, Reason: "Bad Request (multiple Call-ID)"})
	ErrDupCSeq          = parseRule(&ErrKind{Rule: "duplicate-cseq", Status: 400, Reason: "Bad Request (multiple CSeq)"})
	ErrDupMaxForwards   = parseRule(&ErrKind{Rule: "duplicate-max-forwards", Status: 400, Reason: "Bad Request (multiple Max-Forwards)"})
	ErrDupContentLength = parseRule(&ErrKind{Rule: "duplicate-content-length", Status: 400, Reason: "Bad Request (multiple Content-Length)"})

	// Required headers (RFC 3261 8.1.1) missing.
	ErrMissingVia    = parseRule(&ErrKind{Rule: "missing-via", Status: 400, Reason: "Bad Request (missing Via)"})
	ErrMissingFrom   = parseRule(&ErrKind{Rule: "missing-from", Status: 400, Reason: "Bad Request (missing From)"})
	ErrMissingTo     = parseRule(&ErrKind{Rule: "missing-to", Status: 400, Reason: "Bad Request (missing To)"})
	ErrMissingCallID = parseRule(&ErrKind{Rule: "missing-call-id", Status: 400, Reason: "Bad Request (missing Call-ID)"})
	ErrMissingCSeq   = parseRule(&ErrKind{Rule: "missing-cseq", Status: 400, Reason: "Bad Request (missing CSeq)"})
)

var parseRules []*ErrKind

func parseRule(k *ErrKind) *ErrKind {
	parseRules = append(parseRules, k)
	k.index = len(parseRules)
	return k
}

// ParseRules returns every rule Parse enforces, in declaration order: the
// list to count parse errors by (a rule added here is counted everywhere
// with no other change). The slice is shared: do not modify it.
func ParseRules() []*ErrKind { return parseRules }

// ParseRuleIndex returns the index in ParseRules of the rule err (from
// Parse) broke, or -1 when err is not a parse error. It does not allocate.
func ParseRuleIndex(err error) int {
	var k *ErrKind
	switch e := err.(type) {
	case *ParseError:
		k = e.Kind
	case *ErrKind:
		k = e
	}
	if k == nil {
		return -1
	}
	return k.index - 1
}

// ResponseFor says how a proxy answers a message Parse rejected with err:
// the status code and reason phrase of the response, or 0 and "" when the
// datagram must be dropped silently. It drops whenever err is nil or not a
// parse error, the start line did not show a request (responses are never
// answered, RFC 3261 16.7 / 18.1.2), or the request is an ACK (which is
// never answered, RFC 3261 17.1.1.3).
func ResponseFor(m *Msg, err error) (status int, reason string) {
	var k *ErrKind
	switch e := err.(type) {
	case *ParseError:
		k = e.Kind
	case *ErrKind:
		k = e
	default:
		return 0, ""
	}
	if k == nil || k.Status == 0 || m == nil || !m.IsRequest || m.Method == MethodACK {
		return 0, ""
	}
	return k.Status, k.Reason
}

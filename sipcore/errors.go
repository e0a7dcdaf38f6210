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

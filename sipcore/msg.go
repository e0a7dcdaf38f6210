package sipcore

// Span locates bytes inside the buffer a Msg was parsed from:
// buf[Off:Off+Len]. Messages are UDP datagrams (at most MaxMessageSize
// bytes), so 16-bit offsets suffice and keep Msg small enough to reset cheaply.
type Span struct {
	Off, Len uint16
}

// End is the offset just past the span.
func (s Span) End() int { return int(s.Off) + int(s.Len) }

// Empty reports whether the span covers no bytes.
func (s Span) Empty() bool { return s.Len == 0 }

// Limits fixed by the size of Msg's index arrays. A message that exceeds one
// gets its own error (see errors.go), never a silent truncation.
const (
	MaxMessageSize = 65535 // largest UDP payload Parse accepts
	MaxHeaders     = 128   // header values (after splitting comma lists)
	// MaxVias is 64, not 32: RFC 4475 longreq (a valid message) carries 34
	// Vias, and a Max-Forwards of 70 allows that many honest hops.
	MaxVias     = 64
	MaxContacts = 16
	MaxRoutes   = 32 // each of Route and Record-Route
)

// Method identifies a SIP method. Unknown methods keep their text in
// Msg.MethodSpan and are MethodUnknown.
type Method uint8

// Methods known to the proxy.
const (
	MethodUnknown Method = iota
	MethodINVITE
	MethodACK
	MethodBYE
	MethodCANCEL
	MethodREGISTER
	MethodOPTIONS
	MethodPRACK
	MethodSUBSCRIBE
	MethodNOTIFY
	MethodPUBLISH
	MethodINFO
	MethodREFER
	MethodMESSAGE
	MethodUPDATE
)

// HeaderKind identifies a header the parser knows, whether written in full
// or compact form. Everything else is HdrOther and reachable by name.
type HeaderKind uint8

// Header kinds. Compact forms map to the same kind as the full name.
const (
	HdrOther HeaderKind = iota
	HdrVia
	HdrFrom
	HdrTo
	HdrCallID
	HdrCSeq
	HdrMaxForwards
	HdrContact
	HdrContentLength
	HdrContentType
	HdrContentEncoding
	HdrRoute
	HdrRecordRoute
	HdrAuthorization
	HdrProxyAuthorization
	HdrProxyRequire
	HdrRequire
	HdrSupported
	HdrUserAgent
	HdrExpires
	HdrSubject
	HdrEvent
	HdrAllowEvents
	HdrReferTo
	HdrReferredBy
	HdrSessionExpires
	HdrIdentity
	HdrAcceptContact
	numHeaderKinds
)

// Header is one header value in message order. A header line carrying a
// comma-separated list of Via, Contact, Route or Record-Route values yields
// one Header per value, all with the same Line.
type Header struct {
	Kind  HeaderKind
	Name  Span // the name as written (may be compact)
	Value Span // the value, trimmed of surrounding whitespace
	// Line is the whole header line, from the first byte of its name to
	// just past its CRLF: builders remove or copy headers by line.
	Line Span
}

// Scheme is a URI scheme.
type Scheme uint8

// URI schemes. Unknown schemes are kept opaque (only Raw and SchemeSpan are set).
const (
	SchemeOther Scheme = iota
	SchemeSIP
	SchemeSIPS
	SchemeTel
)

// HostKind says what a URI or Via host is.
type HostKind uint8

// Host kinds.
const (
	HostNone HostKind = iota
	HostName
	HostIPv4
	HostIPv6 // Host includes the brackets of the IPv6 reference
)

// URI is a parsed sip, sips or tel URI (RFC 3261 19.1, RFC 3966). All spans
// point into the message buffer; escapes are not decoded.
type URI struct {
	Scheme     Scheme
	Raw        Span // the whole URI
	SchemeSpan Span
	User       Span // may contain escapes and ';' (RFC 4475 semiuri)
	Password   Span
	HostKind   HostKind
	Host       Span
	Port       uint16
	HasPort    bool
	Params     Span // all ";name=value" parameters, without the leading ';'
	Transport  Span
	MAddr      Span
	UserParam  Span // user=phone|ip
	TTL        Span
	MethodPar  Span // method=
	LR         bool
	Headers    Span // after '?', without it
}

// NameAddr is a From, To, Contact, Route or Record-Route value:
// [display-name] <URI> *(;param) or a bare addr-spec.
//
// Parse fills only what a proxy reads (RFC 3261 16.3): Value and Header
// always; Params and Tag for From and To; everything for Route. Display,
// URI (and for Contact and Record-Route, Params) are filled by
// Msg.ParseAddress or Msg.Validate, and Parsed says whether they are.
type NameAddr struct {
	Value   Span // the whole value
	Display Span // without quotes; set once Parsed
	URI     URI  // set once Parsed
	Params  Span // header parameters after the URI, without the leading ';'
	Tag     Span // tag= (From, To)
	Header  uint8
	// Parsed reports whether Display, URI and Params are filled and the
	// whole value was checked against the grammar.
	Parsed bool
}

// Via is one Via value (RFC 3261 20.42, RFC 3581 rport).
type Via struct {
	Value     Span // the whole value
	Transport Span // UDP, TCP, TLS, SCTP, or any token
	HostKind  HostKind
	Host      Span // sent-by host; IPv6 references keep their brackets
	Port      uint16
	HasPort   bool
	Params    Span // everything after sent-by, without the leading ';'
	Branch    Span
	Received  Span
	RPort     Span // value of rport=; when valueless, empty and placed just past the name
	HasRPort  bool // rport present, with or without a value
	MAddr     Span
	Header    uint8 // index into Msg.Headers
}

// Msg is one parsed SIP message: offsets into the buffer given to Parse,
// which the caller keeps alive and unchanged while the Msg is in use. A Msg
// is reusable: Parse resets it. Its zero value is ready for Parse.
type Msg struct {
	buf []byte

	// IsRequest distinguishes a request from a response.
	IsRequest bool

	// Request line.
	Method     Method
	MethodSpan Span
	RURI       URI

	// Status line.
	StatusCode uint16
	Reason     Span

	// Headers in message order.
	Headers  [MaxHeaders]Header
	NHeaders int

	Vias [MaxVias]Via
	NVia int

	From, To NameAddr
	CallID   Span

	CSeq       uint32
	CSeqMethod Method
	CSeqSpan   Span // method text of CSeq

	// MaxForwards is -1 when the header is absent.
	MaxForwards int

	Contacts    [MaxContacts]NameAddr
	NContact    int
	StarContact bool // Contact: *

	Routes       [MaxRoutes]NameAddr
	NRoute       int
	RecordRoutes [MaxRoutes]NameAddr
	NRecordRoute int

	// ContentLength is -1 when the header is absent.
	ContentLength int
	ContentType   Span

	// Index into Headers of the first header of the kind, -1 when absent.
	Authorization      int16
	ProxyAuthorization int16
	ProxyRequire       int16
	Require            int16
	Supported          int16
	UserAgent          int16
	Expires            int16

	// Body is framed by Content-Length with the UDP rules of RFC 3261 18.3.
	Body Span
	// End is where the message ends in buf (bytes after it are ignored:
	// the tail of a datagram longer than Content-Length).
	End int

	// err is returned (by pointer) from Parse so that errors carry the
	// offset without allocating.
	err ParseError

	// seen has bit k set when a header of HeaderKind k was parsed: duplicate
	// and required-header checks without scanning Headers.
	seen uint32
}

// Has reports whether the message carries at least one header of the kind.
func (m *Msg) Has(kind HeaderKind) bool { return m.seen&(1<<kind) != 0 }

// Next returns the index in Headers of the first header of the kind at or
// after from, or -1 when there is none. Iterate with
// for i := m.Next(k, 0); i >= 0; i = m.Next(k, i+1).
func (m *Msg) Next(kind HeaderKind, from int) int {
	if from < 0 {
		from = 0
	}
	for i := from; i < m.NHeaders; i++ {
		if m.Headers[i].Kind == kind {
			return i
		}
	}
	return -1
}

// Find returns the index in Headers of the first header named name at or
// after from, or -1 when there is none. Names compare case-insensitively and
// a compact form equals its long name ("i" finds Call-ID and the reverse).
func (m *Msg) Find(name string, from int) int {
	if k := headerKind(name); k != HdrOther {
		return m.Next(k, from)
	}
	if from < 0 {
		from = 0
	}
	for i := from; i < m.NHeaders; i++ {
		h := &m.Headers[i]
		if h.Kind == HdrOther && equalFold(m.B(h.Name), name) {
			return i
		}
	}
	return -1
}

// Buf returns the buffer the message was parsed from.
func (m *Msg) Buf() []byte { return m.buf }

// B returns the bytes of a span of this message.
func (m *Msg) B(s Span) []byte { return m.buf[s.Off:s.End()] }

package sipcore

// The lazy half of the parser. RFC 3261 16.3 (Request Validation): "Any
// components involved in the remainder of these Request Validation steps or
// the Request Forwarding section MUST be well-formed. Any other components,
// well-formed or not, SHOULD be ignored and remain unchanged when the
// message is forwarded." A stateless proxy never reads the From and To URIs
// and display names, nor Contact and Record-Route values, so Parse leaves
// them for ParseAddress and Validate: forwarding costs no grammar work on
// bytes it copies unchanged, and whoever does read them (a registrar
// reading Contact, a UAS) asks first.

// ParseAddress parses one From, To, Contact, Route or Record-Route value of
// m (na must point into m: &m.From, &m.Contacts[i], ...), filling Display,
// URI and Params and setting Parsed. It allocates nothing. A value already
// parsed returns nil at once.
//
// On error it returns a *ParseError (stored in m like Parse's, valid until
// the next Parse, ParseAddress or Validate) of the kind Parse returned
// before parsing was lazy: ErrBadFrom, ErrBadTo, ErrBadContact or
// ErrBadRecordRoute, at the offset of the value; na is then left as Parse
// left it (Tag and Params of From and To stay usable).
func (m *Msg) ParseAddress(na *NameAddr) error {
	if na.Parsed {
		return nil
	}
	var bad *ErrKind
	if int(na.Header) < m.NHeaders {
		switch m.Headers[na.Header].Kind {
		case HdrFrom:
			bad = ErrBadFrom
		case HdrTo:
			bad = ErrBadTo
		case HdrContact:
			bad = ErrBadContact
		case HdrRoute:
			bad = ErrBadRoute
		case HdrRecordRoute:
			bad = ErrBadRecordRoute
		}
	}
	p, e := int(na.Value.Off), na.Value.End()
	if bad == nil || p >= e || e > len(m.buf) {
		// Not a value of this message (a zero NameAddr, or one from
		// another Msg): nothing trustworthy to parse.
		return m.fail(ErrBadURI, p)
	}
	saved := *na
	if !m.parseNameAddr(p, e, na, true) {
		*na = saved
		return m.fail(bad, p)
	}
	na.Header = saved.Header
	return nil
}

// Validate parses every component Parse left lazy (From and To URIs and
// display names, every Contact and Record-Route value) and returns the
// first error in message order, of the kind Parse returned for it before
// parsing was lazy; nil when the whole message is well-formed. Call it
// after Parse returned nil. It allocates nothing, and a second call is
// cheap: parsed values are skipped.
func (m *Msg) Validate() error {
	if m.seen&(1<<HdrFrom|1<<HdrTo|1<<HdrContact|1<<HdrRecordRoute) == 0 {
		return nil
	}
	ci, ri := 0, 0
	for i := 0; i < m.NHeaders; i++ {
		var na *NameAddr
		switch m.Headers[i].Kind {
		case HdrFrom:
			na = &m.From
		case HdrTo:
			na = &m.To
		case HdrContact:
			if m.StarContact || ci >= m.NContact {
				continue
			}
			na = &m.Contacts[ci]
			ci++
		case HdrRecordRoute:
			if ri >= m.NRecordRoute {
				continue
			}
			na = &m.RecordRoutes[ri]
			ri++
		default:
			continue
		}
		if err := m.ParseAddress(na); err != nil {
			return err
		}
	}
	return nil
}

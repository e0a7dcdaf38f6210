package sipcore

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sipedge/sipcore/shareddata"
)

// confCase is what the proxy must conclude from one torture-test message.
// For a message that parses: the fields every stage relies on. For one
// that does not: which of Parse and Validate rejects it, the rule it breaks
// and the response ResponseFor gives.
//
// Parse checks only what a proxy reads (RFC 3261 16.3); a fault in a
// component it leaves lazy (From/To URI and display name, Contact,
// Record-Route) is one a proxy forwards unchanged, so such rows have
// lazyErr: Parse accepts, Validate rejects.
type confCase struct {
	err     *ErrKind // Parse rejects with this; nil: Parse must succeed
	lazyErr *ErrKind // Parse accepts (forwarded unchanged, RFC 3261 16.3), Validate rejects with this
	status  int      // ResponseFor status for err or lazyErr (0 = drop)

	method     string // request method text ("" for a response)
	code       uint16 // response status code
	scheme     Scheme
	user, host string
	port       uint16
	callID     string
	cseq       uint32
	cseqMethod string
	branches   []string // every Via's branch, top first (nil: check only nvia)
	nvia       int      // used when branches is nil
	cl, body   int

	// check asserts the facts a stage will act on.
	check func(t *testing.T, m *Msg)
	// why records the choice where RFC 4475 allows "liberal: accept".
	why string
}

var conformance = map[string]confCase{
	// RFC 4475 3.1.1: valid messages.
	"wsinv.dat": {method: "INVITE", scheme: SchemeSIP, user: "vivekg", host: "chair-dnrc.example.com", callID: "wsinv.ndaksdj@192.0.2.1", cseq: 9, cseqMethod: "INVITE",
		branches: []string{"390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"}, cl: 150, body: 150,
		check: func(t *testing.T, m *Msg) {
			eq(t, "To tag", m.B(m.To.Tag), "1918181833n")
			eq(t, "From display", m.B(m.From.Display), `J Rosenberg \\\"`)
			eq(t, "From tag", m.B(m.From.Tag), "98asjd8")
			is(t, "Max-Forwards", m.MaxForwards, 68)
			is(t, "Via[1] transport", string(m.B(m.Vias[1].Transport)), "TCP")
			eq(t, "Via[1] host", m.B(m.Vias[1].Host), "spindle.example.com")
			is(t, "routes", m.NRoute, 1)
			is(t, "route lr", m.Routes[0].URI.LR, true)
			is(t, "contacts", m.NContact, 1)
			eq(t, "contact display", m.B(m.Contacts[0].Display), `Quoted string \"\"`)
			if i := m.Find("NewFangledHeader", 0); i < 0 {
				t.Error("NewFangledHeader not found")
			} else {
				eq(t, "folded value", m.B(m.Headers[i].Value), "newfangled value   continued newfangled value")
			}
			is(t, "Subject (s) index", m.Next(HdrSubject, 0) >= 0, true)
		}},
	"intmeth.dat": {method: "!interesting-Method0123456789_*+`.%indeed'~", scheme: SchemeSIP, user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*", host: "example.com",
		callID: "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{", cseq: 139122385, cseqMethod: "!interesting-Method0123456789_*+`.%indeed'~",
		branches: []string{"z9hG4bK-.!%66*_+`'~"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "method", m.Method, MethodUnknown)
			eq(t, "password", m.B(m.RURI.Password), "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
			eq(t, "From display", m.B(m.From.Display), "token1~` token2'+_ token3*%!.-")
			eq(t, "From tag", m.B(m.From.Tag), "_token~1'+`*%!-.")
		}},
	"esc01.dat": {method: "INVITE", scheme: SchemeSIP, user: "sips%3Auser%40example.com", host: "example.net", callID: "esc01.239409asdfakjkn23onasd0-3234", cseq: 234234, cseqMethod: "INVITE",
		branches: []string{"z9hG4bKkdjuw"}, cl: 150, body: 150,
		check: func(t *testing.T, m *Msg) {
			eq(t, "To user (escapes kept)", m.B(m.To.URI.User), "%75se%72")
			eq(t, "Contact params", m.B(m.Contacts[0].URI.Params), "%6C%72;n%61me=v%61lue%25%34%31")
			is(t, "Contact lr (escaped name is not lr)", m.Contacts[0].URI.LR, false)
		}},
	"escnull.dat": {method: "REGISTER", scheme: SchemeSIP, host: "example.com", callID: "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd", cseq: 14398234, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "contacts", m.NContact, 2)
			eq(t, "contact 0 user", m.B(m.Contacts[0].URI.User), "%00")
			eq(t, "contact 1 user", m.B(m.Contacts[1].URI.User), "%00%00")
		}},
	"esc02.dat": {method: "RE%47IST%45R", scheme: SchemeSIP, host: "registrar.example.com", callID: "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf", cseq: 29344, cseqMethod: "RE%47IST%45R",
		branches: []string{"z9hG4bK209%fzsnel234"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "method is not REGISTER", m.Method, MethodUnknown)
			is(t, "contacts (C%6Fntact is another header)", m.NContact, 2)
			is(t, "C%6Fntact found by name", m.Find("c%6fntact", 0) >= 0, true)
		}},
	"lwsdisp.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "example.com", callID: "lwsdisp.1234abcd@funky.example.com", cseq: 60, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { eq(t, "From display", m.B(m.From.Display), "caller") },
		why:   "RFC 4475 says accept despite the RFC 3261 grammar bug"},
	"longreq.dat": {method: "INVITE", scheme: SchemeSIP, user: "user", host: "example.com", port: 0,
		callID: "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
		cseq:   3882340, cseqMethod: "INVITE", nvia: 34, cl: 150, body: 150,
		check: func(t *testing.T, m *Msg) {
			eq(t, "top Via host", m.B(m.Vias[0].Host), "sip33.example.com")
			if !bytes.HasSuffix(m.B(m.Vias[33].Branch), []byte("longbranchvalue")) {
				t.Errorf("last Via branch = %q", m.B(m.Vias[33].Branch))
			}
			eq(t, "last Via received", m.B(m.Vias[33].Received), "192.0.2.5")
			is(t, "To port", m.To.URI.Port, uint16(6000))
		}},
	"dblreq.dat": {method: "REGISTER", scheme: SchemeSIP, host: "example.com", callID: "dblreq.0ha0isndaksdj99sdfafnl3lk233412", cseq: 8, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKkdjuw23492"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "End stops before the trailing INVITE", m.End, len(m.Buf())-450)
		}},
	"semiuri.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user;par=u%40example.net", host: "example.com", callID: "semiuri.0ha0isndaksdj", cseq: 8, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { eq(t, "R-URI params", m.B(m.RURI.Params), "") }},
	"transports.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "example.com", callID: "transports.kijh4akdnaqjkwendsasfdj", cseq: 60, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKkdjuw", "z9hG4bKklasjdhf", "z9hG4bK2980unddj", "z9hG4bKasd0f3en", "z9hG4bK0a9idfnee"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			for i, tr := range []string{"UDP", "SCTP", "TLS", "UNKNOWN", "TCP"} {
				eq(t, "transport", m.B(m.Vias[i].Transport), tr)
			}
		}},
	"mpart01.dat": {method: "MESSAGE", scheme: SchemeSIP, user: "kumiko", host: "example.org", callID: "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..", cseq: 1, cseqMethod: "MESSAGE",
		branches: []string{"z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-"}, cl: 553, body: 553,
		check: func(t *testing.T, m *Msg) { is(t, "Via rport", m.Vias[0].HasRPort, true) }},
	"unreason.dat": {code: 200, callID: "unreason.1234ksdfak3j2erwedfsASdf", cseq: 35, cseqMethod: "INVITE",
		branches: []string{"z9hG4bK1324923"}, cl: 154, body: 154,
		check: func(t *testing.T, m *Msg) {
			if !bytes.HasPrefix(m.B(m.Reason), []byte("= 2**3 * 5**2 ")) {
				t.Errorf("reason = %q", m.B(m.Reason))
			}
		}},
	"noreason.dat": {code: 100, callID: "noreason.asndj203insdf99223ndf", cseq: 35, cseqMethod: "INVITE",
		branches: []string{"z9hG4bK2398ndaoe"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { is(t, "empty reason", m.Reason.Len, uint16(0)) }},

	// RFC 4475 3.1.2: invalid messages.
	"badinv01.dat": {err: ErrBadVia, status: 400, why: "empty Via values and params ';;,;,,'"},
	"clerr.dat":    {err: ErrContentLengthExceeds, status: 400},
	"ncl.dat":      {err: ErrBadContentLength, status: 400},
	"scalar02.dat": {err: ErrBadCSeq, status: 400},
	"scalarlg.dat": {err: ErrBadCSeq, status: 0, why: "a response: dropped"},
	"quotbal.dat":  {err: ErrBadTo, status: 400, why: "strict: no closing quote is inferred"},
	"ltgtruri.dat": {err: ErrRequestURI, status: 400, why: "strict: <> are not stripped"},
	"lwsruri.dat":  {err: ErrRequestLine, status: 400, why: "strict: whitespace in the Request-URI is never guessed around"},
	"lwsstart.dat": {err: ErrRequestLine, status: 400, why: "strict: exactly one SP between elements, so nothing odd is forwarded"},
	"trws.dat":     {err: ErrRequestLine, status: 400, why: "strict: trailing SP on the Request-Line is rejected"},
	"escruri.dat":  {err: ErrRequestURIHdrs, status: 400, why: "headers are not allowed in a Request-URI; reject rather than risk applying them"},
	"regbadct.dat": {lazyErr: ErrBadContact, status: 400, method: "REGISTER", scheme: SchemeSIP, host: "example.com",
		callID: "regbadct.k345asrl3fdbv@10.0.0.1", cseq: 1, cseqMethod: "REGISTER", branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "contacts split", m.NContact, 1)
			is(t, "contact not parsed", m.Contacts[0].Parsed, false)
		},
		why: "strict in Validate: <> are not inferred around an addr-spec with '?'; a proxy forwards the Contact unchanged"},
	"badaspec.dat": {lazyErr: ErrBadTo, status: 400, method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "example.org",
		callID: "badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3", cseq: 3923239, cseqMethod: "OPTIONS", branches: []string{"z9hG4bKkdju43234"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			eq(t, "From tag (eager)", m.B(m.From.Tag), "433423")
			is(t, "To tag", m.To.Tag.Len, uint16(0))
		},
		why: "strict in Validate: no spaces inside <>; a proxy reads only the To tag, which is well-formed"},
	"baddn.dat":      {err: ErrBadFrom, status: 400, why: "strict: quotes are not inferred; the From error comes before the missing final CRLF"},
	"badvers.dat":    {err: ErrVersion, status: 505},
	"mismatch01.dat": {err: ErrCSeqMismatch, status: 400},
	"mismatch02.dat": {err: ErrCSeqMismatch, status: 400, why: "400 (allowed): the CSeq mismatch is found before method support is considered"},
	"bigcode.dat":    {err: ErrStatusCode, status: 0},
	"baddate.dat": {method: "INVITE", scheme: SchemeSIP, user: "user", host: "example.com", callID: "baddate.239423mnsadf3j23lj42--sedfnm234", cseq: 1392934, cseqMethod: "INVITE",
		branches: []string{"z9hG4bKkdjuw"}, cl: 150, body: 150,
		check: func(t *testing.T, m *Msg) { is(t, "Date kept", m.Find("date", 0) >= 0, true) },
		why:   "liberal: a proxy does not read Date, so it forwards it untouched"},

	// RFC 4475 3.2 and 3.4: valid but unusual.
	"badbranch.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "example.com", callID: "badbranch.sadonfo23i420jv0as0derf3j3n", cseq: 8, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bK"}, cl: 0, body: 0,
		why: "parses; the bare magic cookie is for the transaction layer to judge"},
	"inv2543.dat": {method: "INVITE", scheme: SchemeSIP, user: "UserB", host: "example.com", callID: "inv2543.1717@ift.client.example.com", cseq: 56, cseqMethod: "INVITE",
		branches: []string{""}, cl: -1, body: 105,
		check: func(t *testing.T, m *Msg) {
			is(t, "Max-Forwards absent", m.MaxForwards, -1)
			is(t, "no From tag", m.From.Tag.Len, uint16(0))
			is(t, "no branch param", m.Vias[0].Params.Len, uint16(0))
			eq(t, "Record-Route maddr", m.B(m.RecordRoutes[0].URI.MAddr), "ss1.example.com")
			// Bare addr-spec: ";user=phone" is a header parameter (RFC 3261 20.10).
			eq(t, "To URI user param", m.B(m.To.URI.UserParam), "")
			eq(t, "To header params", m.B(m.To.Params), "user=phone")
			eq(t, "From URI user param", m.B(m.From.URI.UserParam), "phone")
		}},

	// RFC 4475 3.3: application-layer semantics. Parse succeeds where the
	// decision belongs to a later stage; framing and required-header
	// faults are the parser's.
	"insuf.dat":   {err: ErrMissingFrom, status: 400, why: "From, To and Call-ID are missing; the first in RFC 3261 order is named"},
	"multi01.dat": {err: ErrDupCSeq, status: 400, why: "the first repeated single-value header (CSeq) is named"},
	"mcl01.dat":   {err: ErrDupContentLength, status: 400, why: "two Content-Length values: no framing possible"},
	"unkscm.dat": {method: "OPTIONS", scheme: SchemeOther, callID: "unkscm.nasdfasser0q239nwsdfasdkl34", cseq: 3923423, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKkdjuw39234"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			eq(t, "scheme (proxy answers 416)", m.B(m.RURI.SchemeSpan), "nobodyKnowsThisScheme")
		}},
	"novelsc.dat": {method: "OPTIONS", scheme: SchemeOther, callID: "novelsc.asdfasser0q239nwsdfasdkl34", cseq: 3923423, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKkdjuw39234"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { eq(t, "scheme (proxy answers 416)", m.B(m.RURI.SchemeSpan), "soap.beep") }},
	"unksm2.dat": {method: "REGISTER", scheme: SchemeSIP, host: "example.com", callID: "unksm2.daksdj@hyphenated-host.example.com", cseq: 234902, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "To scheme other (registrar answers 400)", m.To.URI.Scheme, SchemeOther)
			eq(t, "From scheme", m.B(m.From.URI.SchemeSpan), "http")
			eq(t, "Contact scheme", m.B(m.Contacts[0].URI.SchemeSpan), "name")
		}},
	"bext01.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "example.com", callID: "bext01.0ha0isndaksdj", cseq: 8, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			if m.ProxyRequire < 0 || m.Require < 0 {
				t.Fatalf("Proxy-Require %d / Require %d not indexed (proxy answers 420)", m.ProxyRequire, m.Require)
			}
			eq(t, "Proxy-Require", m.B(m.Headers[m.ProxyRequire].Value), "noProxiesSupportThis, norDoAnyProxiesSupportThis")
		}},
	"invut.dat": {method: "INVITE", scheme: SchemeSIP, user: "user", host: "example.com", callID: "invut.0ha0isndaksdjadsfij34n23d", cseq: 235448, cseqMethod: "INVITE",
		branches: []string{"z9hG4bKkdjuw"}, cl: 40, body: 40,
		check: func(t *testing.T, m *Msg) { eq(t, "Content-Type", m.B(m.ContentType), "application/unknownformat") }},
	"regaut01.dat": {method: "REGISTER", scheme: SchemeSIP, host: "example.com", callID: "regaut01.0ha0isndaksdj", cseq: 9338, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			if m.Authorization < 0 {
				t.Fatal("Authorization not indexed")
			}
			if !bytes.HasPrefix(m.B(m.Headers[m.Authorization].Value), []byte("NoOneKnowsThisScheme")) {
				t.Errorf("Authorization = %q", m.B(m.Headers[m.Authorization].Value))
			}
		}},
	"bcast.dat": {code: 200, callID: "bcast.0384840201234ksdfak3j2erwedfsASdf", cseq: 35, cseqMethod: "INVITE",
		branches: []string{"z9hG4bK1324923", "z9hG4bK1saber23"}, cl: 154, body: 154,
		check: func(t *testing.T, m *Msg) {
			eq(t, "second Via host (proxy must not forward there)", m.B(m.Vias[1].Host), "255.255.255.255")
			is(t, "host kind", m.Vias[1].HostKind, HostIPv4)
		}},
	"zeromf.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "example.com", callID: "zeromf.jfasdlfnm2o2l43r5u0asdfas", cseq: 39234321, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKkdjuw2349i"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { is(t, "Max-Forwards (proxy answers 483)", m.MaxForwards, 0) }},
	"cparam01.dat": {method: "REGISTER", scheme: SchemeSIP, host: "example.com", callID: "cparam01.70710@saturn.example.com", cseq: 2, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			eq(t, "binding URI has no params", m.B(m.Contacts[0].URI.Params), "")
			eq(t, "contact-param", m.B(m.Contacts[0].Params), "unknownparam")
		}},
	"cparam02.dat": {method: "REGISTER", scheme: SchemeSIP, host: "example.com", callID: "cparam02.70710@saturn.example.com", cseq: 3, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			eq(t, "URI param kept", m.B(m.Contacts[0].URI.Params), "unknownparam")
			eq(t, "no contact-param", m.B(m.Contacts[0].Params), "")
		}},
	"regescrt.dat": {method: "REGISTER", scheme: SchemeSIP, host: "example.com", callID: "regescrt.k345asrl3fdbv@192.0.2.1", cseq: 14398234, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKkdjuw"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			eq(t, "Contact URI headers", m.B(m.Contacts[0].URI.Headers), "Route=%3Csip:sip.example.com%3E")
		}},
	"sdp01.dat": {method: "INVITE", scheme: SchemeSIP, user: "user", host: "example.com", callID: "sdp01.ndaksdj9342dasdd", cseq: 8, cseqMethod: "INVITE",
		branches: []string{"z9hG4bKkdjuw"}, cl: 150, body: 150,
		check: func(t *testing.T, m *Msg) { is(t, "Accept findable (UAS answers 406)", m.Find("Accept", 0) >= 0, true) }},

	// RFC 5118.
	"ipv6-good.dat": {method: "REGISTER", scheme: SchemeSIP, host: "[2001:db8::10]", callID: "SSG9559905523997077@hlau_4100", cseq: 98176, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKas3-111"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "R-URI host kind", m.RURI.HostKind, HostIPv6)
			eq(t, "Via host", m.B(m.Vias[0].Host), "[2001:db8::9:1]")
			eq(t, "Contact host", m.B(m.Contacts[0].URI.Host), "[2001:db8::1]")
		}},
	"ipv6-bad.dat": {err: ErrRequestURI, status: 400},
	"port-ambiguous.dat": {method: "REGISTER", scheme: SchemeSIP, host: "[2001:db8::10:5070]", callID: "SSG9559905523997077@hlau_4100", cseq: 98176, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKas3-111"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { is(t, "no port", m.RURI.HasPort, false) }},
	"port-unambiguous.dat": {method: "REGISTER", scheme: SchemeSIP, host: "[2001:db8::10]", port: 5070, callID: "SSG9559905523997077@hlau_4100", cseq: 98176, cseqMethod: "REGISTER",
		branches: []string{"z9hG4bKas3-111"}, cl: 0, body: 0},
	"via-received-param-with-delim.dat": {method: "BYE", scheme: SchemeSIP, host: "[2001:db8::10]", callID: "SSG9559905523997077@hlau_4100", cseq: 321, cseqMethod: "BYE",
		branches: []string{"z9hG4bKas3-111"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { eq(t, "received", m.B(m.Vias[0].Received), "[2001:db8::9:255]") },
		why:   "tolerated as RFC 5118 asks"},
	"via-received-param-no-delim.dat": {method: "OPTIONS", scheme: SchemeSIP, host: "[2001:db8::10]", callID: "SSG95523997077@hlau_4100", cseq: 921, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKas3"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) { eq(t, "received", m.B(m.Vias[0].Received), "2001:db8::9:255") }},
	"ipv6-in-sdp.dat": {method: "INVITE", scheme: SchemeSIP, user: "user", host: "[2001:db8::10]", callID: "SSG9559905523997077@hlau_4100", cseq: 8612, cseqMethod: "INVITE",
		branches: []string{"z9hG4bKas3-111"}, cl: 251, body: 251},
	"mult-ip-in-header.dat": {method: "BYE", scheme: SchemeSIP, user: "user", host: "host.example.net", callID: "997077@lau_4100", cseq: 89187, cseqMethod: "BYE",
		branches: []string{"z9hG4bKas3-111", "z9hG4bKjhja8781hjuaij65144", "z9hG4bK451jj"}, cl: 0, body: 0,
		check: func(t *testing.T, m *Msg) {
			is(t, "Via 0 port", m.Vias[0].Port, uint16(6050))
			is(t, "Via 1 kind", m.Vias[1].HostKind, HostIPv4)
			eq(t, "Via 2 received", m.B(m.Vias[2].Received), "192.0.2.200")
		}},
	"mult-ip-in-sdp.dat": {method: "INVITE", scheme: SchemeSIP, user: "user", host: "[2001:db8::10]", callID: "SSG9559905523997077@hlau_4100", cseq: 8912, cseqMethod: "INVITE",
		branches: []string{"z9hG4bKas3-111"}, cl: 189, body: 189},
	"ipv4-mapped-ipv6.dat": {method: "INVITE", scheme: SchemeSIP, user: "user", host: "example.com", callID: "SSG9559905523997077@hlau_4100", cseq: 612, cseqMethod: "INVITE",
		branches: []string{"z9hG4bKbh19", "z9hG4bKas3-111"}, cl: 245, body: 245,
		check: func(t *testing.T, m *Msg) {
			eq(t, "Via 0 host", m.B(m.Vias[0].Host), "[::ffff:192.0.2.10]")
			is(t, "Via 0 port", m.Vias[0].Port, uint16(19823))
		}},
	"ipv6-bug-abnf-3-colons.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "[2001:db8:::192.0.2.1]", callID: "G9559905523997077@hlau_4100", cseq: 689, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKas3-111"}, cl: 0, body: 0, why: "tolerated as RFC 5118 asks"},
	"ipv6-correct-abnf-2-colons.dat": {method: "OPTIONS", scheme: SchemeSIP, user: "user", host: "[2001:db8::192.0.2.1]", callID: "G9559905523997077@hlau_4100", cseq: 689, cseqMethod: "OPTIONS",
		branches: []string{"z9hG4bKas3-111"}, cl: 0, body: 0},
}

func eq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if string(got) != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func is[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// indexFiles reads the file column of an INDEX.tsv.
func indexFiles(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var files []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if cols[0] == "file" || cols[0] == "" {
			continue
		}
		files = append(files, cols[0])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return files
}

func TestConformance(t *testing.T) {
	root := shareddata.Dir(t, "conformance")
	covered := map[string]bool{}
	for _, dir := range []string{"rfc4475", "rfc5118"} {
		files := indexFiles(t, filepath.Join(root, dir, "INDEX.tsv"))
		if len(files) == 0 {
			t.Fatalf("%s/INDEX.tsv lists no file", dir)
		}
		for _, name := range files {
			covered[name] = true
			t.Run(name, func(t *testing.T) {
				want, ok := conformance[name]
				if !ok {
					t.Fatalf("INDEX.tsv lists %s but the conformance table has no row for it", name)
				}
				buf, err := os.ReadFile(filepath.Join(root, dir, name))
				if err != nil {
					t.Fatal(err)
				}
				checkConformance(t, buf, want)
			})
		}
	}
	for name := range conformance {
		if !covered[name] {
			t.Errorf("table row %s matches no INDEX.tsv entry", name)
		}
	}
}

func checkConformance(t *testing.T, buf []byte, want confCase) {
	var m Msg
	err := Parse(buf, &m)
	status, reason := ResponseFor(&m, err)
	wantRejected := func(err error, kind *ErrKind, status int, reason string) {
		t.Helper()
		if !errors.Is(err, kind) {
			t.Fatalf("err = %v, want %v", err, kind)
		}
		if status != want.status {
			t.Errorf("ResponseFor = %d %q, want %d", status, reason, want.status)
		}
		if status != 0 && !strings.Contains(reason, "Bad Request") && status == 400 {
			t.Errorf("reason %q does not say Bad Request", reason)
		}
	}
	if want.err != nil {
		wantRejected(err, want.err, status, reason)
		return
	}
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if status != 0 {
		t.Errorf("ResponseFor(nil error) = %d", status)
	}
	if want.method != "" {
		is(t, "IsRequest", m.IsRequest, true)
		eq(t, "method", m.B(m.MethodSpan), want.method)
		is(t, "R-URI scheme", m.RURI.Scheme, want.scheme)
		eq(t, "R-URI user", m.B(m.RURI.User), want.user)
		eq(t, "R-URI host", m.B(m.RURI.Host), want.host)
		is(t, "R-URI port", m.RURI.Port, want.port)
	} else {
		is(t, "IsRequest", m.IsRequest, false)
		is(t, "status", m.StatusCode, want.code)
	}
	eq(t, "Call-ID", m.B(m.CallID), want.callID)
	is(t, "CSeq", m.CSeq, want.cseq)
	eq(t, "CSeq method", m.B(m.CSeqSpan), want.cseqMethod)
	if want.branches != nil {
		if m.NVia != len(want.branches) {
			t.Fatalf("Via count = %d, want %d", m.NVia, len(want.branches))
		}
		for i, br := range want.branches {
			eq(t, "branch", m.B(m.Vias[i].Branch), br)
		}
	} else {
		is(t, "Via count", m.NVia, want.nvia)
	}
	is(t, "Content-Length", m.ContentLength, want.cl)
	is(t, "body length", int(m.Body.Len), want.body)
	if m.End > len(buf) || m.Body.End() != m.End {
		t.Errorf("End %d, body end %d, datagram %d", m.End, m.Body.End(), len(buf))
	}
	if want.lazyErr != nil {
		// The eager facts above hold (the proxy forwards the message);
		// check runs before Validate to see what Parse alone left.
		if want.check != nil {
			want.check(t, &m)
		}
		verr := m.Validate()
		status, reason := ResponseFor(&m, verr)
		wantRejected(verr, want.lazyErr, status, reason)
		return
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if want.check != nil {
		want.check(t, &m)
	}
}

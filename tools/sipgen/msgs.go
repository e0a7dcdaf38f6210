package sipgen

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"sipedge/sipcore"
)

// User-Agents of the callers: common phones and softphones.
var userAgents = []string{
	"Yealink SIP-T46S 66.86.0.15", "Grandstream GXP2170 1.0.11.23", "Zoiper rv2.10.19.9",
	"Linphone/5.2.5 (belle-sip/5.2.94)", "PolycomVVX-VVX_411-UA/6.4.3.5018", "Cisco-CP8845/14.2.1",
	"MicroSIP/3.21.3", "Bria 6 release 6.5.4",
}

// scannerAgents are the User-Agents of well-known SIP scanners.
var scannerAgents = []string{"friendly-scanner", "sipvicious", "sipcli/v1.8", "VaxSIPUserAgent/3.1", "pplsip"}

// floodGuesses are user names brute-forcers try besides real extensions.
var floodGuesses = []string{"100", "1000", "1001", "admin", "test", "guest", "200", "sip", "user", "101"}

func hostOf(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

func hostPort(ap netip.AddrPort) string {
	return fmt.Sprintf("%s:%d", hostOf(ap.Addr()), ap.Port())
}

func hex64(v uint64) string { return fmt.Sprintf("%016x", v) }
func hex32(v uint64) string { return fmt.Sprintf("%08x", uint32(v)) }

// callP are the random fields of a call, drawn in a fixed order from the
// flow's seed so that every message of the call agrees on them.
type callP struct {
	caller, callee                       int
	addr                                 netip.AddrPort
	callID, fromTag, brInv, brAck, brBye string
	ua                                   string
	rtpPort                              int64
	sess                                 uint64
}

func (g *Generator) callerAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(addrAdd(g.cfg.Client, uint64(i)), g.cfg.ClientPort)
}

func (g *Generator) callParams(f *flow) callP {
	r := rng{f.seed}
	n := int64(g.cfg.Callers)
	var p callP
	p.caller = int(r.intn(n))
	p.callee = int((int64(p.caller) + 1 + r.intn(n-1)) % n)
	p.addr = g.callerAddr(p.caller)
	p.callID = hex64(r.u64()) + hex32(r.u64()) + "@" + hostOf(p.addr.Addr())
	p.fromTag = hex32(r.u64())
	p.brInv = "z9hG4bK" + hex64(r.u64())
	p.brAck = "z9hG4bK" + hex64(r.u64())
	p.brBye = "z9hG4bK" + hex64(r.u64())
	p.ua = userAgents[r.intn(int64(len(userAgents)))]
	p.rtpPort = 10000 + 2*r.intn(25000)
	p.sess = r.u64() >> 20
	return p
}

// sdp is a typical audio offer or answer from addr.
func sdp(dst []byte, addr netip.Addr, port int64, sess uint64) []byte {
	fam, ip := "IP4", addr.Unmap().String()
	if addr.Unmap().Is6() {
		fam = "IP6"
	}
	return fmt.Appendf(dst, "v=0\r\no=- %d %d IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
		sess, sess, fam, ip, fam, ip, port)
}

// callMsg writes a caller's request of the call into dst.
func (g *Generator) callMsg(dst []byte, f *flow, p *callP, code int) []byte {
	proxy := hostOf(g.cfg.Proxy.Addr())
	hp := hostPort(p.addr)
	ruri := fmt.Sprintf("sip:%s@%s", userName(p.callee), proxy)
	method, branch, cseq, toTag := "INVITE", p.brInv, 1, ""
	inDialog := false
	switch code {
	case cAck2xx:
		method, branch, inDialog = "ACK", p.brAck, true
	case cBye:
		method, branch, cseq, inDialog = "BYE", p.brBye, 2, true
	case cCancel:
		method = "CANCEL"
	case cAck487:
		method = "ACK"
	}
	if code != cInvite && code != cCancel {
		toTag = ";tag=" + string(f.toTag[:f.tagLen])
	}
	if inDialog {
		// The 2xx's Contact: the backend's UAS.
		ruri = fmt.Sprintf("sip:%s@%s", userName(p.callee), hostPort(g.cfg.Backend))
	}
	dst = fmt.Appendf(dst, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n", method, ruri, hp, branch)
	if inDialog && g.cfg.RecordRoute {
		dst = fmt.Appendf(dst, "Route: <sip:%s;lr>\r\n", hostPort(g.cfg.Proxy))
	}
	dst = fmt.Appendf(dst, "From: \"User %s\" <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n",
		userName(p.caller), userName(p.caller), proxy, p.fromTag, userName(p.callee), proxy, toTag, p.callID, cseq, method)
	if code == cInvite {
		body := sdp(nil, p.addr.Addr(), p.rtpPort, p.sess)
		dst = fmt.Appendf(dst, "Contact: <sip:%s@%s>\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nSupported: replaces, timer\r\n"+
			"User-Agent: %s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n", userName(p.caller), hp, p.ua, len(body))
		return append(dst, body...)
	}
	return fmt.Appendf(dst, "User-Agent: %s\r\nContent-Length: 0\r\n\r\n", p.ua)
}

func (g *Generator) callRequest(f *flow, code int) (src, dst netip.AddrPort, err error) {
	p := g.callParams(f)
	if code != cInvite && code != cCancel && f.tagLen == 0 {
		if err := g.learnToTag(f, &p, code == cAck487); err != nil {
			return src, dst, err
		}
	}
	g.msg = g.callMsg(g.msg[:0], f, &p, code)
	return p.addr, g.cfg.Proxy, nil
}

// learnToTag builds the backend's final answer to learn the To-tag the
// caller then uses in its ACK and BYE.
func (g *Generator) learnToTag(f *flow, p *callP, cancelled bool) error {
	code := cR200Invite
	if cancelled {
		code = cR487
	}
	if err := g.buildResponse(f, p, code); err != nil {
		return err
	}
	if err := sipcore.Parse(g.msg, &g.m); err != nil {
		return fmt.Errorf("re-parse own response: %w", err)
	}
	f.tagLen = copy(f.toTag[:], g.m.B(g.m.To.Tag))
	return nil
}

func (g *Generator) backendResponse(f *flow, code int) (src, dst netip.AddrPort, err error) {
	p := g.callParams(f)
	if code == cR200Bye && f.tagLen == 0 {
		if err := g.learnToTag(f, &p, false); err != nil {
			return src, dst, err
		}
	}
	if err := g.buildResponse(f, &p, code); err != nil {
		return src, dst, err
	}
	return g.cfg.Backend, g.cfg.Proxy, nil
}

// buildResponse writes into g.msg the backend's response to the request
// as the proxy forwarded it: the caller's request goes through
// sipcore.BuildForward with the appliance's options (so the top Via and its
// branch are the proxy's) and is answered with sipcore.BuildResponse.
func (g *Generator) buildResponse(f *flow, p *callP, code int) error {
	req := cInvite
	switch code {
	case cR200Bye:
		req = cBye
	case cR200Cancel:
		req = cCancel
	}
	g.aux = g.callMsg(g.aux[:0], f, p, req)
	if err := sipcore.Parse(g.aux, &g.m); err != nil {
		return fmt.Errorf("parse own request: %w", err)
	}
	if cap(g.aux2) < sipcore.MaxMessageSize {
		g.aux2 = make([]byte, sipcore.MaxMessageSize)
	}
	n, err := sipcore.BuildForward(g.aux2[:cap(g.aux2)], &g.m, &g.fwd, p.addr, nil)
	if err != nil {
		return fmt.Errorf("forward own request: %w", err)
	}
	if err := sipcore.Parse(g.aux2[:n], &g.m2); err != nil {
		return fmt.Errorf("parse forwarded request: %w", err)
	}
	status, reason := 200, "OK"
	switch code {
	case cR100:
		status, reason = 100, "Trying"
	case cR180:
		status, reason = 180, "Ringing"
	case cR487:
		status, reason = 487, "Request Terminated"
	}
	var extra []byte
	if code == cR180 || code == cR200Invite {
		extra = fmt.Appendf(extra, "Contact: <sip:%s@%s>\r\n", userName(p.callee), hostPort(g.cfg.Backend))
		if g.cfg.RecordRoute {
			extra = fmt.Appendf(extra, "Record-Route: <%s>\r\n", g.fwd.RecordRoute)
		}
	}
	extra = append(extra, "Server: sipgen-backend\r\n"...)
	if cap(g.msg) < sipcore.MaxMessageSize {
		g.msg = make([]byte, 0, sipcore.MaxMessageSize)
	}
	n, err = sipcore.BuildResponse(g.msg[:cap(g.msg)], &g.m2, status, reason, g.cfg.Proxy, &sipcore.ResponseOptions{Key: &g.backKey, Extra: extra})
	if err != nil {
		return fmt.Errorf("answer forwarded request: %w", err)
	}
	g.msg = g.msg[:n]
	if code == cR200Invite {
		const tail = "Content-Length: 0\r\n\r\n"
		if !bytes.HasSuffix(g.msg, []byte(tail)) {
			return errors.New("sipcore.BuildResponse no longer ends with Content-Length: 0; update sipgen")
		}
		body := sdp(nil, g.cfg.Backend.Addr(), 40000+p.rtpPort%20000, p.sess+1)
		g.msg = fmt.Appendf(g.msg[:len(g.msg)-len(tail)], "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n", len(body))
		g.msg = append(g.msg, body...)
	}
	return nil
}

// regP are the random fields of a registration.
type regP struct {
	user                          int
	addr                          netip.AddrPort
	callID, tag, br1, br2, cnonce string
	alg                           sipcore.Algorithm
	ua                            string
}

// binding is what the proxy binds this registration's nonces to.
func (p *regP) binding() sipcore.NonceBinding {
	return sipcore.NonceBinding{Src: p.addr.Addr(), CallID: []byte(p.callID)}
}

func (g *Generator) regParams(f *flow) regP {
	r := rng{f.seed}
	var p regP
	p.user = int(r.intn(int64(g.cfg.Callers)))
	p.addr = g.callerAddr(p.user)
	p.callID = hex64(r.u64()) + "@" + hostOf(p.addr.Addr())
	p.tag = hex32(r.u64())
	p.br1 = "z9hG4bK" + hex64(r.u64())
	p.br2 = "z9hG4bK" + hex64(r.u64())
	p.cnonce = hex64(r.u64())
	p.alg = sipcore.AlgMD5
	if r.intn(2) == 1 {
		p.alg = sipcore.AlgSHA256
	}
	p.ua = userAgents[r.intn(int64(len(userAgents)))]
	return p
}

// nonceTime is when the proxy challenged the registration.
func (g *Generator) nonceTime(f *flow) time.Time {
	return g.cfg.Start.Add(time.Duration(f.t0) + time.Millisecond)
}

// digestResponse computes the qop=auth response of RFC 7616 3.4.1.
func digestResponse(alg sipcore.Algorithm, ha1, method, uri, nonce, nc, cnonce string) string {
	h := func(s string) string {
		if alg == sipcore.AlgSHA256 {
			v := sha256.Sum256([]byte(s))
			return hex.EncodeToString(v[:])
		}
		v := md5.Sum([]byte(s))
		return hex.EncodeToString(v[:])
	}
	return h(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + h(method+":"+uri))
}

func (g *Generator) registerMsg(dst []byte, p *regP, auth string, branch string, cseq int) []byte {
	proxy := hostOf(g.cfg.Proxy.Addr())
	name := userName(p.user)
	dst = fmt.Appendf(dst, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n"+
		"Contact: <sip:%s@%s>\r\nExpires: 3600\r\n",
		proxy, hostPort(p.addr), branch, name, proxy, p.tag, name, proxy, p.callID, cseq, name, hostPort(p.addr))
	if auth != "" {
		dst = append(dst, auth...)
	}
	return fmt.Appendf(dst, "User-Agent: %s\r\nContent-Length: 0\r\n\r\n", p.ua)
}

func (g *Generator) register(f *flow, code int, at int64) (src, dst netip.AddrPort) {
	p := g.regParams(f)
	if code == cRegister {
		g.msg = g.registerMsg(g.msg[:0], &p, "", p.br1, 1)
		return p.addr, g.cfg.Proxy
	}
	u := g.user(p.user)
	ha1 := u.HA1MD5
	if p.alg == sipcore.AlgSHA256 {
		ha1 = u.HA1SHA
	}
	nonce := string(g.nonceKey.Append(nil, g.nonceTime(f), []byte(g.cfg.Realm), p.binding()))
	uri := "sip:" + hostOf(g.cfg.Proxy.Addr())
	resp := digestResponse(p.alg, ha1, "REGISTER", uri, nonce, "00000001", p.cnonce)
	auth := fmt.Sprintf("Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=%s, cnonce=\"%s\", qop=auth, nc=00000001\r\n",
		u.Name, g.cfg.Realm, nonce, uri, resp, p.alg, p.cnonce)
	g.msg = g.registerMsg(g.msg[:0], &p, auth, p.br2, 2)
	return p.addr, g.cfg.Proxy
}

// challenge writes the proxy's 401 to the first REGISTER, with the nonce
// the authenticated retry answers.
func (g *Generator) challenge(f *flow, at int64) (src, dst netip.AddrPort, err error) {
	p := g.regParams(f)
	g.aux = g.registerMsg(g.aux[:0], &p, "", p.br1, 1)
	if err := sipcore.Parse(g.aux, &g.m); err != nil {
		return src, dst, fmt.Errorf("parse own REGISTER: %w", err)
	}
	nonce := g.nonceKey.Append(nil, g.nonceTime(f), []byte(g.cfg.Realm), p.binding())
	extra := sipcore.AppendChallenge(nil, &sipcore.Challenge{Realm: []byte(g.cfg.Realm), Nonce: nonce, Algorithm: p.alg})
	if cap(g.msg) < sipcore.MaxMessageSize {
		g.msg = make([]byte, 0, sipcore.MaxMessageSize)
	}
	n, err := sipcore.BuildResponse(g.msg[:cap(g.msg)], &g.m, 401, "Unauthorized", p.addr, &sipcore.ResponseOptions{Key: &g.proxyKey, Extra: extra})
	if err != nil {
		return src, dst, fmt.Errorf("build 401: %w", err)
	}
	g.msg = g.msg[:n]
	return g.cfg.Proxy, p.addr, nil
}

func (g *Generator) options(f *flow) (src, dst netip.AddrPort) {
	r := rng{f.seed}
	user := int(r.intn(int64(g.cfg.Callers)))
	addr := g.callerAddr(user)
	proxy := hostOf(g.cfg.Proxy.Addr())
	name := userName(user)
	g.msg = fmt.Appendf(g.msg[:0], "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s@%s\r\nCSeq: %d OPTIONS\r\nContact: <sip:%s@%s>\r\n"+
		"Accept: application/sdp\r\nUser-Agent: %s\r\nContent-Length: 0\r\n\r\n",
		proxy, hostPort(addr), hex64(r.u64()), name, proxy, hex32(r.u64()), proxy, hex64(r.u64()), hostOf(addr.Addr()),
		1+r.intn(1000), name, hostPort(addr), userAgents[r.intn(int64(len(userAgents)))])
	return addr, g.cfg.Proxy
}

// FloodSource is the address flood message i comes from.
func (g *Generator) floodSource(i int) netip.AddrPort {
	return netip.AddrPortFrom(addrAdd(g.cfg.Attacker, uint64(i%g.cfg.FloodSources)), 5070)
}

func (g *Generator) scanSource(i int) netip.AddrPort {
	return netip.AddrPortFrom(addrAdd(g.cfg.Attacker, uint64(g.cfg.FloodSources+i%g.cfg.ScanSources)), 5060)
}

// flood writes one brute-force REGISTER: half without credentials, half
// with a valid nonce and a response computed from a guessed password.
func (g *Generator) flood(f *flow) (src, dst netip.AddrPort) {
	r := rng{f.seed}
	src = g.floodSource(f.idx)
	proxy := hostOf(g.cfg.Proxy.Addr())
	name := floodGuesses[r.intn(int64(len(floodGuesses)))]
	if r.intn(2) == 0 {
		name = userName(int(r.intn(int64(g.cfg.Callers))))
	}
	branch, tag, callID := hex64(r.u64()), hex32(r.u64()), hex64(r.u64())
	g.msg = fmt.Appendf(g.msg[:0], "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\nContact: <sip:%s@%s>\r\nExpires: 3600\r\n",
		proxy, hostPort(src), branch, name, proxy, tag, name, proxy, callID, 1+f.idx/g.cfg.FloodSources, name, hostPort(src))
	if f.idx%2 == 1 {
		bind := sipcore.NonceBinding{Src: src.Addr(), CallID: []byte(callID)}
		nonce := g.nonceKey.Append(nil, g.cfg.Start.Add(time.Duration(f.t0)-time.Millisecond), []byte(g.cfg.Realm), bind)
		uri := "sip:" + proxy
		guess := sipcore.HA1(sipcore.AlgMD5, name, g.cfg.Realm, hex32(r.u64()))
		cn := hex64(r.u64())
		g.msg = fmt.Appendf(g.msg, "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=MD5, cnonce=\"%s\", qop=auth, nc=00000001\r\n",
			name, g.cfg.Realm, nonce, uri, digestResponse(sipcore.AlgMD5, guess, "REGISTER", uri, string(nonce), "00000001", cn), cn)
	}
	g.msg = append(g.msg, "User-Agent: Z 5.5.2 v2.10.19.9\r\nContent-Length: 0\r\n\r\n"...)
	return src, g.cfg.Proxy
}

// scan writes one message of a sipvicious-style extension sweep: OPTIONS
// mostly, every fourth an INVITE, with a scanner's User-Agent.
func (g *Generator) scan(f *flow) (src, dst netip.AddrPort) {
	r := rng{f.seed}
	src = g.scanSource(f.idx)
	proxy := hostOf(g.cfg.Proxy.Addr())
	ext := 100 + f.idx/g.cfg.ScanSources
	method := "OPTIONS"
	if f.idx%4 == 3 {
		method = "INVITE"
	}
	ua := scannerAgents[(f.idx/g.cfg.ScanSources)%len(scannerAgents)]
	g.msg = fmt.Appendf(g.msg[:0], "%s sip:%d@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d;rport\r\nContent-Length: 0\r\n"+
		"From: \"%d\"<sip:%d@%s>;tag=%s\r\nAccept: application/sdp\r\nUser-Agent: %s\r\nTo: \"%d\"<sip:%d@%s>\r\n"+
		"Contact: sip:%d@%s\r\nCSeq: 1 %s\r\nCall-ID: %d\r\nMax-Forwards: 70\r\n\r\n",
		method, ext, proxy, hostPort(src), r.u64()>>16, ext, ext, proxy, hex64(r.u64())+"3133",
		ua, ext, ext, proxy, ext, hostPort(src), method, r.u64()>>8)
	return src, g.cfg.Proxy
}

// numMalformed is the number of distinct defects malformed messages carry.
const numMalformed = 9

// malformed writes an OPTIONS from a caller's address with one defect
// chosen by the flow index, each breaking a rule sipcore.Parse enforces.
func (g *Generator) malformed(f *flow) (src, dst netip.AddrPort) {
	r := rng{f.seed}
	src = g.callerAddr(int(r.intn(int64(g.cfg.Callers))))
	proxy := hostOf(g.cfg.Proxy.Addr())
	via := fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", hostPort(src), hex64(r.u64()))
	from := fmt.Sprintf("From: <sip:bad@%s>;tag=%s\r\n", proxy, hex32(r.u64()))
	to := fmt.Sprintf("To: <sip:%s>\r\n", proxy)
	cid := fmt.Sprintf("Call-ID: %s\r\n", hex64(r.u64()))
	cseq := "CSeq: 1 OPTIONS\r\n"
	start := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n", proxy)
	cl := "Content-Length: 0\r\n"
	end := "\r\n"
	switch f.idx % numMalformed {
	case 0:
		cid = ""
	case 1:
		cseq = "CSeq: one OPTIONS\r\n"
	case 2:
		cl = "Content-Length: 400\r\n"
		end = "\r\nv=0\r\n"
	case 3:
		cl, end = "Content-Le", "" // cut off mid-header
	case 4:
		start = fmt.Sprintf("OPTIONS sip:%s SIP/3.0\r\n", proxy)
	case 5:
		via = ""
	case 6:
		via = "Via: SIP/2.0/UDP ;;;branch\r\n"
	case 7:
		to = "To is missing its colon\r\n"
	case 8:
		start = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not SIP\r\n"
	}
	g.msg = append(g.msg[:0], start+via+from+to+cid+cseq+"Max-Forwards: 70\r\n"+cl+end...)
	return src, g.cfg.Proxy
}

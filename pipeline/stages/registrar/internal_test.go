package registrar

import (
	"strings"
	"testing"
	"time"

	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

func TestGrant(t *testing.T) {
	r := &Registrar{cfg: Config{DefaultExpires: time.Hour, MinExpires: time.Minute, MaxExpires: 2 * time.Hour}}
	for _, c := range []struct {
		contact, header int64
		want            time.Duration
		brief           bool
	}{
		{-1, -1, time.Hour, false},         // the default
		{-1, 120, 2 * time.Minute, false},  // Expires header
		{300, 120, 5 * time.Minute, false}, // the contact's expires wins
		{0, 120, 0, false},                 // removal
		{-1, 0, 0, false},                  // removal by header
		{30, -1, 0, true},                  // 423
		{99999, -1, 2 * time.Hour, false},  // clamped
	} {
		got, brief := r.grant(c.contact, c.header)
		if got != c.want || brief != c.brief {
			t.Errorf("grant(%d, %d) = %v %v, want %v %v", c.contact, c.header, got, brief, c.want, c.brief)
		}
	}
}

func TestOKLines(t *testing.T) {
	r := &Registrar{}
	now := time.Unix(1_800_000_000, 0)
	msg := []byte("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nPath: <sip:p1.example.net;lr>, <sip:p2.example.net;lr>\r\nContent-Length: 0\r\n\r\n")
	var m sipcore.Msg
	if err := sipcore.Parse(msg, &m); err != nil {
		t.Fatal(err)
	}
	got := string(r.okLines(&m, []bindings.Binding{
		{Contact: "sip:a@192.0.2.1", Q: 1000, Expires: now.Add(90 * time.Second)},
		{Contact: "sip:a@192.0.2.2", Q: 500, Instance: "<urn:uuid:1>", RegID: 2, Expires: now.Add(100 * time.Millisecond)},
		{Contact: "sip:a@192.0.2.3", Q: 0, Expires: now.Add(time.Hour)},
	}, now))
	want := "Contact: <sip:a@192.0.2.1>;expires=90\r\n" +
		"Contact: <sip:a@192.0.2.2>;expires=1;q=0.5;+sip.instance=\"<urn:uuid:1>\";reg-id=2\r\n" +
		"Contact: <sip:a@192.0.2.3>;expires=3600;q=0.0\r\n" +
		"Path: <sip:p1.example.net;lr>, <sip:p2.example.net;lr>\r\n" +
		"Date: Fri, 15 Jan 2027 08:00:00 GMT\r\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if p := pathOf(&m); strings.Join(p, "|") != "<sip:p1.example.net;lr>|<sip:p2.example.net;lr>" {
		t.Fatalf("path %q", p)
	}
}

package appliance_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"sipedge/appliance"
	"sipedge/appliance/config"
)

const adminToken = "0123456789abcdef-admin-token"

// adminDaemon runs a socket-mode daemon on loopback with extra config and
// returns its admin base URL.
func adminDaemon(t *testing.T, extra string) (*appliance.Daemon, string, *config.Config) {
	t.Helper()
	text := fmt.Sprintf(`[node]
addresses = ["127.0.0.1"]
secret = "admin test secret, 32 bytes....."
[io]
port = "socket"
listen = %q
cores = [0]
[admin]
listen = %q
%s
[[dispatcher.backends]]
address = "127.0.0.1:9"
`, freeUDP(t, "127.0.0.1"), freeTCP(t, "127.0.0.1"), extra)
	cfg, _, err := config.Check([]byte(text), "admin test", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := appliance.New(cfg, appliance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return d, "http://" + d.AdminAddr().String(), cfg
}

func adminCall(t *testing.T, method, url, host, token, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = nil, 0
	}
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	c := http.Client{Timeout: 5 * time.Second}
	var resp *http.Response
	for end := time.Now().Add(5 * time.Second); ; { // the server starts with Run
		if resp, err = c.Do(req); err == nil || time.Now().After(end) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The admin API is the operator's only: a token when one is set (but for
// /healthz), its own Host names only (DNS rebinding), JSON bodies of
// bounded size, and no allow-list entry wider than the configured minimum.
func TestAdminAPIGate(t *testing.T) {
	_, base, _ := adminDaemon(t, fmt.Sprintf("token = %q", adminToken))
	json := "application/json"
	for _, tc := range []struct {
		name               string
		method, path, host string
		token, ctype, body string
		want               int
	}{
		{"no token", "GET", "/metrics", "", "", "", "", 401},
		{"wrong token", "GET", "/metrics", "", "wrong-token-0123456789", "", "", 401},
		{"token", "GET", "/metrics", "", adminToken, "", "", 200},
		{"health without token", "GET", "/healthz", "", "", "", "", 0},
		{"rebinding host", "GET", "/metrics", "evil.example.com", adminToken, "", "", 421},
		{"localhost", "GET", "/bans", "localhost:9060", adminToken, "", "", 200},
		{"form body", "POST", "/allow", "", adminToken, "application/x-www-form-urlencoded", `cidr=10.0.0.0/8`, 415},
		{"no content type", "POST", "/allow", "", adminToken, "", `{"cidr": "10.1.0.0/24"}`, 415},
		{"too large", "POST", "/allow", "", adminToken, json, `{"cidr": "` + strings.Repeat("1", 5000) + `"}`, 413},
		{"everything allowed", "POST", "/allow", "", adminToken, json, `{"cidr": "0.0.0.0/0"}`, 403},
		{"a /8", "POST", "/allow", "", adminToken, json, `{"cidr": "10.0.0.0/8"}`, 403},
		{"a v6 /32", "POST", "/allow", "", adminToken, json, `{"cidr": "2001:db8::/32"}`, 403},
		{"a /24", "POST", "/allow", "", adminToken, json, `{"cidr": "10.1.0.0/24"}`, 200},
		{"unauthenticated ban", "POST", "/bans", "", "", json, `{"source": "192.0.2.7"}`, 401},
	} {
		code, body := adminCall(t, tc.method, base+tc.path, tc.host, tc.token, tc.ctype, tc.body)
		if code != tc.want && (tc.want != 0 || code == 401 || code == 421) {
			t.Errorf("%s: %s %s: %d, want %d\n%s", tc.name, tc.method, tc.path, code, tc.want, body)
		}
	}
}

// A listener off loopback needs a token: the config says so and how.
func TestAdminTokenRequiredOffLoopback(t *testing.T) {
	base := "[node]\naddresses = [\"127.0.0.1\"]\nsecret = \"admin test secret, 32 bytes.....\"\n" +
		"[[dispatcher.backends]]\naddress = \"127.0.0.1:9\"\n[admin]\nlisten = \"0.0.0.0:9060\"\n"
	_, _, err := config.Check([]byte(base), "t", nil)
	if err == nil || !strings.Contains(err.Error(), "admin.token") {
		t.Fatalf("non-loopback admin without a token: %v, want an admin.token error", err)
	}
	if _, _, err := config.Check([]byte(base+"token = \"short\"\n"), "t", nil); err == nil || !strings.Contains(err.Error(), "16") {
		t.Fatalf("short token: %v, want an error naming the minimum", err)
	}
	if _, _, err := config.Check([]byte(base+fmt.Sprintf("token = %q\n", adminToken)), "t", nil); err != nil {
		t.Fatalf("non-loopback admin with a token: %v", err)
	}
}

// SIGHUP swaps the configuration while the admin server reads it: run
// both at once (the race detector in `make test` watches this).
func TestReloadWhileScraping(t *testing.T) {
	d, base, cfg := adminDaemon(t, "")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 30; i++ {
			if code, _ := adminCall(t, "GET", base+"/metrics", "", "", "", ""); code != 200 {
				t.Errorf("GET /metrics during reloads: %d", code)
				return
			}
		}
	}()
	for i := 0; i < 30; i++ {
		if err := d.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

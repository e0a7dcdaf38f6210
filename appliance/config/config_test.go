package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"sipedge"
)

// fakeSys is a machine with the given CPUs and interfaces (name -> queues).
type fakeSys struct {
	cpus   []int
	ifaces map[string]int
	err    error
}

func (f fakeSys) CPUs() ([]int, error) { return f.cpus, f.err }

func (f fakeSys) Queues(name string) (int, bool, error) {
	if f.err != nil {
		return 0, false, f.err
	}
	n, ok := f.ifaces[name]
	return n, ok, nil
}

// twoCPUs is a small box: CPUs 0-1, eth0 with 2 queues.
var twoCPUs = fakeSys{cpus: []int{0, 1}, ifaces: map[string]int{"eth0": 2, "lo": 1}}

// oneBackend makes a snippet complete: a config without backends is invalid.
const oneBackend = "\n[[dispatcher.backends]]\naddress = \"10.0.0.1:5080\"\n"

const testSecret = "0123456789abcdef0123456789abcdef"

func TestEverySectionIsASection(t *testing.T) {
	rt := reflect.TypeOf(Config{})
	st := reflect.TypeOf((*section)(nil)).Elem()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if !reflect.PointerTo(f.Type).Implements(st) {
			t.Errorf("Config.%s (%s) does not implement section: give it setDefaults and check", f.Name, f.Type)
		}
		if f.Tag.Get("toml") == "" {
			t.Errorf("Config.%s has no toml tag", f.Name)
		}
	}
}

func TestEmbeddedDefaultValidatesOnThisMachine(t *testing.T) {
	c, warns, err := Check(sipedge.DefaultConfig, "config.toml", Host())
	if err != nil {
		t.Fatalf("the embedded config.toml does not validate on this machine:\n%v", err)
	}
	if len(warns) != 1 || warns[0].Key != "node.secret" {
		t.Errorf("warnings = %v, want only the generated-secret one", warns)
	}
	if !c.Node.SecretGenerated || len(c.Node.Secret) != 64 {
		t.Errorf("secret generated=%v len=%d, want a generated 64-hex-digit secret", c.Node.SecretGenerated, len(c.Node.Secret))
	}
	if c.IO.Listen != "127.0.0.1:5060" || c.Admin.Listen != "127.0.0.1:9060" {
		t.Errorf("listen %q admin %q, want the laptop defaults", c.IO.Listen, c.Admin.Listen)
	}
	want := []Backend{{Address: "127.0.0.1:5080", Weight: 1}, {Address: "127.0.0.1:5081", Weight: 1}}
	if !reflect.DeepEqual(c.Dispatcher.Backends, want) {
		t.Errorf("backends = %+v, want %+v", c.Dispatcher.Backends, want)
	}
}

// The file documents the defaults: what it says must be what the code does
// when a key is left out.
func TestEmbeddedDefaultMatchesCodeDefaults(t *testing.T) {
	file, _, err := Parse(sipedge.DefaultConfig, "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	empty, _, err := Parse(nil, "empty")
	if err != nil {
		t.Fatal(err)
	}
	// The keys whose file value deliberately differs from the code default.
	empty.Node.Addresses = file.Node.Addresses
	empty.Dispatcher.Backends = file.Dispatcher.Backends
	empty.Node.Secret = file.Node.Secret
	if !reflect.DeepEqual(file, empty) {
		t.Errorf("config.toml and the code defaults disagree:\nfile: %+v\ncode: %+v", file, empty)
	}
}

func TestEmbeddedDefaultDocumentsEveryKey(t *testing.T) {
	var raw map[string]any
	md, err := toml.Decode(string(sipedge.DefaultConfig), &raw)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, k := range md.Keys() {
		present[strings.Join(k, ".")] = true
	}
	schema := map[string]bool{}
	schemaKeys(reflect.TypeOf(Config{}), "", schema)
	for k := range schema {
		if !present[k] {
			t.Errorf("config.toml does not show key %s", k)
		}
	}
	// Every key line has a comment above it, possibly shared with the key
	// lines and table header right before it.
	lines := strings.Split(string(sipedge.DefaultConfig), "\n")
	for i, l := range lines {
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		j := i - 1
		for j >= 0 && lines[j] != "" && lines[j][0] != '#' {
			j--
		}
		if j < 0 || lines[j] == "" {
			t.Errorf("config.toml line %d %q has no comment above it", i+1, l)
		}
	}
}

func TestErrors(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "in.pcap")
	if err := os.WriteFile(pcap, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"queue beyond interface", "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [0, 3]\ncores = [0, 1]",
			[]string{`config: io.queues[1]=3: interface eth0 has 2 queues (see /sys/class/net/eth0/queues)`}},
		{"core beyond machine", "[io]\ncores = [0, 1, 7]",
			[]string{`config: io.cores[2]=7: this machine has CPUs 0-1`}},
		{"no such interface", "[io]\nport = \"afxdp\"\ninterface = \"eth9\"\nqueues = [0]",
			[]string{`config: io.interface "eth9": no such interface (ip link shows the names)`}},
		{"backend not an address", "[[dispatcher.backends]]\naddress = \"http://127.0.0.1\"",
			[]string{`config: dispatcher.backends[0].address "http://127.0.0.1": want an IP, host:port, a domain or a sip: URI`}},
		{"backend sips", "[[dispatcher.backends]]\naddress = \"sips:pbx.example\"",
			[]string{`config: dispatcher.backends[0].address "sips:pbx.example": sips needs TLS`}},
		{"backend tcp", "[[dispatcher.backends]]\naddress = \"sip:pbx.example;transport=tcp\"",
			[]string{`config: dispatcher.backends[0].address "sip:pbx.example;transport=tcp": transport=tcp: the appliance sends SIP over UDP only`}},
		{"backend priority", "[[dispatcher.backends]]\naddress = \"sip:pbx.example\"\npriority = 70000",
			[]string{`config: dispatcher.backends[0].priority=70000: want 0 to 65535`}},
		{"dns", "[dispatcher.dns]\nservers = [\"ns.example\"]\ntimeout = \"1m\"\nttl_floor = \"10ms\"\nttl_ceiling = \"48h\"\nlinger = \"-1s\"", []string{
			`config: dispatcher.dns.linger=-1s: want 0 (forget at once) to 24h`,
			`config: dispatcher.dns.servers[0] "ns.example": want an IP address or IP:port`,
			`config: dispatcher.dns.timeout=1m0s: want 10ms to 30s`,
			`config: dispatcher.dns.ttl_floor=10ms: want 100ms to 1h`,
			`config: dispatcher.dns.ttl_ceiling=48h0m0s: want from dispatcher.dns.ttl_floor (10ms) to 24h`}},
		{"queues and cores differ", "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [0, 1]\ncores = [0]",
			[]string{`config: io.queues: 2 queues for 1 cores:`}},
		{"afxdp without interface or queues", "[io]\nport = \"afxdp\"",
			[]string{`config: io.interface: empty: port "afxdp" needs`, `config: io.queues: empty: port "afxdp" needs`}},
		{"bad interface name", "[io]\nport = \"afxdp\"\ninterface = \"../x\"\nqueues = [0]",
			[]string{`config: io.interface "../x": not an interface name`}},
		{"duplicate queue and core", "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [1, 1]\ncores = [1, 1]",
			[]string{`config: io.queues[1]=1: already used by io.queues[0]`, `config: io.cores[1]=1: already used by io.cores[0]`}},
		{"negative queue", "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [-1]",
			[]string{`config: io.queues[0]=-1: queue ids start at 0`}},
		{"bad port", "[io]\nport = \"dpdk\"", []string{`config: io.port "dpdk": want "socket", "afxdp" or "pcap"`}},
		{"bad listen", "[io]\nlisten = \"localhost:5060\"", []string{`config: io.listen "localhost:5060": want ip:port`}},
		{"listen port zero", "[io]\nlisten = \"127.0.0.1:0\"", []string{`config: io.listen "127.0.0.1:0": want ip:port`}},
		{"batch zero", "[io]\nbatch = 0", []string{`config: io.batch=0: want 1 to 256 datagrams`}},
		{"batch too big", "[io]\nbatch = 257", []string{`config: io.batch=257: want 1 to 256 datagrams`}},
		{"frame size", "[io]\nframe_size = 1500", []string{`config: io.frame_size=1500: want 2048 or 4096`}},
		{"frame count", "[io]\nframe_count = 1000", []string{`config: io.frame_count=1000: want a power of two from 64 to 262144`}},
		{"rings", "[io]\nrx_ring = 1000\ntx_ring = 0\nfill_ring = 8\ncomp_ring = 131072", []string{
			`config: io.rx_ring=1000: want a power of two`, `config: io.tx_ring=0: want a power of two`,
			`config: io.fill_ring=8: want a power of two`, `config: io.comp_ring=131072: want a power of two`}},
		{"too few frames for the rings", "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [0]\nframe_count = 2048",
			[]string{`config: io.frame_count=2048: below io.fill_ring + io.tx_ring = 4096`}},
		{"batch beyond ring", "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [0]\nbatch = 256\nrx_ring = 128\nframe_count = 8192",
			[]string{`config: io.batch=256: larger than the smaller of io.rx_ring and io.tx_ring (128)`}},
		{"modes", "[io]\nxdp_mode = \"skb\"\nbind_mode = \"zc\"", []string{
			`config: io.xdp_mode "skb": want "auto", "native" or "generic"`, `config: io.bind_mode "zc": want "auto", "zerocopy" or "copy"`}},
		{"zerocopy on generic", "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [0]\nxdp_mode = \"generic\"\nbind_mode = \"zerocopy\"",
			[]string{`config: io.bind_mode: "zerocopy" needs the driver's native XDP`}},
		{"poll interval", "[io]\npoll_interval = \"0s\"", []string{`config: io.poll_interval=0s: want more than 0 and at most 1s`}},
		{"poll interval too long", "[io]\npoll_interval = \"2s\"", []string{`config: io.poll_interval=2s: want more than 0 and at most 1s`}},
		{"wait modes", "[io]\nwait = \"poll\"\nspin = \"1s\"\nbatch_delay = \"-1ms\"\nbusy_poll = \"yes\"", []string{
			`config: io.wait "poll": want "adaptive"`, `config: io.spin=1s: want 0 to 10ms`,
			`config: io.batch_delay=-1ms: want 0 to 5ms`, `config: io.busy_poll "yes": want "auto"`}},
		{"duration without unit", "[io]\npoll_interval = \"10\"", []string{`config: io.poll_interval: "10": want a duration with its unit`}},
		{"socket without cores", "[io]\ncores = []", []string{`config: io.cores: empty: with port "socket"`}},
		{"pcap without input", "[io]\nport = \"pcap\"", []string{`config: io.input: empty: port "pcap" needs the capture file`}},
		{"pcap missing input", "[io]\nport = \"pcap\"\ninput = \"/nonexistent/in.pcap\"\noutput = \"/nonexistent/out.pcap\"",
			[]string{`config: io.input "/nonexistent/in.pcap": cannot read it`, `config: io.output "/nonexistent/out.pcap": its directory does not exist`}},
		{"pcap output is input", "[io]\nport = \"pcap\"\ninput = \"" + pcap + "\"\noutput = \"" + pcap + "\"\ncores = [0, 1]",
			[]string{`config: io.output "` + pcap + `": is io.input`, `config: io.cores: 2 cores: port "pcap" replays one capture on one worker`}},
		{"node name", "[node]\nname = \"my node\"", []string{`config: node.name "my node": want 1 to 64 letters`}},
		{"node addresses", "[node]\naddresses = [\"10.0.0.1\", \"sip.example.com\", \"bad_host!\", \"10.0.0.1:5060\", \"10.0.0.1\"]", []string{
			`config: node.addresses[2] "bad_host!": want an IP address or a host name`,
			`config: node.addresses[3] "10.0.0.1:5060": want an IP address or a host name`,
			`config: node.addresses[4] "10.0.0.1": already listed as node.addresses[0]`}},
		{"short secret", "[node]\nsecret = \"hunter2\"", []string{`config: node.secret: is 7 bytes: want at least 16`}},
		{"admin listen", "[admin]\nlisten = \"9060\"", []string{`config: admin.listen "9060": want ip:port`}},
		{"pprof without admin", "[admin]\nlisten = \"\"\npprof = true", []string{`config: admin.pprof: true, but admin.listen is empty`}},
		{"hashing", "[dispatcher]\nhashing = \"modulo\"", []string{`config: dispatcher.hashing "modulo": want "rendezvous"`}},
		{"retry after", "[dispatcher]\nretry_after = \"1500ms\"", []string{`config: dispatcher.retry_after=1.5s: want whole seconds from 1s to 1h0m0s`}},
		{"no backends", "[dispatcher]\nbackends = []", []string{`config: dispatcher.backends: empty: list at least one backend`}},
		{"backend weight", "[[dispatcher.backends]]\naddress = \"b.example:5060\"\nweight = 0", []string{
			`config: dispatcher.backends[0].weight=0: want 1 to 1000 (to drain a backend, remove it)`}},
		{"backend duplicate", "[[dispatcher.backends]]\naddress = \"10.0.0.1:5080\"", []string{
			`config: dispatcher.backends[1].address "10.0.0.1:5080": already listed as dispatcher.backends[0]`}},
		{"backend is us", "[[dispatcher.backends]]\naddress = \"127.0.0.1:5060\"", []string{
			`config: dispatcher.backends[0].address "127.0.0.1:5060": is io.listen`}},
		{"backend bad port", "[[dispatcher.backends]]\naddress = \"10.0.0.2:99999\"", []string{
			`config: dispatcher.backends[0].address "10.0.0.2:99999": want an IP, host:port`}},
		{"probe", "[dispatcher.probe]\ninterval = \"1s\"\ntimeout = \"1s\"\ndown_after = 0\nup_after = 101", []string{
			`config: dispatcher.probe.timeout=1s: not shorter than dispatcher.probe.interval (1s)`,
			`config: dispatcher.probe.down_after=0: want 1 to 100 failed probes`,
			`config: dispatcher.probe.up_after=101: want 1 to 100 answered probes`}},
		{"probe negative", "[dispatcher.probe]\ninterval = \"-1s\"\ntimeout = \"0s\"", []string{
			`config: dispatcher.probe.interval=-1s: want a positive duration`, `config: dispatcher.probe.timeout=0s: want a positive duration`}},
		{"log", "[log]\nlevel = \"trace\"\nformat = \"xml\"", []string{
			`config: log.level "trace": want "debug", "info", "warn" or "error"`, `config: log.format "xml": want "text" or "json"`}},
		{"wrong type", "[io]\nbatch = \"64\"", []string{`config: io.batch: incompatible types: TOML value has type string; destination has type integer (test.toml line 2)`}},
		{"syntax", "[io\nbatch = 1", []string{`config: test.toml line 2: expected`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.toml + oneBackend
			if strings.Contains(tt.toml, "backends = []") {
				data = tt.toml
			} else if strings.Contains(tt.toml, "dispatcher]") || strings.Contains(tt.toml, "[dispatcher.probe]") {
				data = oneBackend + tt.toml // keep the snippet's keys in its own table
			}
			c, _, err := Check([]byte(data), "test.toml", twoCPUs)
			if err == nil {
				t.Fatalf("no error for:\n%s", data)
			}
			if c != nil {
				t.Errorf("Check returned a config along with errors")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("no line starts with\n  %s\nin\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tt.want) {
				t.Errorf("%d problems reported, want %d:\n  %s", len(lines), len(tt.want), strings.Join(lines, "\n  "))
			}
		})
	}
}

// Every problem of a file is reported at once, across sections, and a
// section that failed to decode neither hides the others nor reports its
// undecoded keys as unknown.
func TestAllErrorsAtOnce(t *testing.T) {
	data := `
[node]
secret = "short"
[io]
batch = "lots"
cores = [5]
[admin]
listen = "x"
[dispatcher]
hashing = "x"
[log]
level = "loud"
colour = true
`
	_, _, err := Check([]byte(data), "t.toml", twoCPUs)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"config: node.secret:", "config: io.batch:", "config: log.colour:", "config: admin.listen", "config: dispatcher.hashing", "config: dispatcher.backends:", "config: log.level"}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "io.cores") {
		t.Errorf("[io] failed to decode, yet its values were checked:\n%v", err)
	}
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
}

func TestUnknownKeys(t *testing.T) {
	c := Default()
	tests := []struct{ toml, want string }{
		{"[registry]\nrealm = \"x\"", "config: [registry]: unknown section (the sections are [node], [io], [admin], [dispatcher], [guard], [auth],"},
		{"realm = \"x\"", "config: realm: unknown key outside any section"},
		{"[io]\nbatchsize = 3", "config: io.batchsize: unknown key (did you mean batch?"},
		{"[io]\nBatch = 3", "config: io.Batch: unknown key (keys are case-sensitive: write batch)"},
		{"[io.pcap]\ninput = \"x\"", "config: io.pcap: unknown key ("},
		{"[dispatcher.probe]\nintervall = \"1s\"", "config: dispatcher.probe.intervall: unknown key (did you mean interval?"},
		{"[[dispatcher.backends]]\naddress = \"10.0.0.9:5060\"\nwieght = 2", "config: dispatcher.backends.wieght: unknown key (did you mean weight?"},
		{"[dispatcher]\nbackends = [{ address = \"10.0.0.9:5060\", port = 5 }]", "config: dispatcher.backends.port: unknown key ("},
	}
	// And one made-up key in every section, whatever sections exist.
	for _, ns := range c.sections() {
		tests = append(tests, struct{ toml, want string }{
			"[" + ns.name + "]\nzz_not_a_key = 1", "config: " + ns.name + ".zz_not_a_key: unknown key (remove it; every key is documented in config.toml)"})
	}
	for _, tt := range tests {
		_, _, err := Parse([]byte(tt.toml), "t.toml")
		if err == nil {
			t.Errorf("no error for %q", tt.toml)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
			t.Errorf("for %q got\n  %v\nwant one line starting with\n  %s", tt.toml, err, tt.want)
		}
	}
}

func TestBackendWeightDefaultsToOne(t *testing.T) {
	data := "[dispatcher]\nbackends = [{ address = \"a.example:5060\" }, { address = \"b.example:5060\", weight = 7 }]"
	c, _, err := Parse([]byte(data), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Dispatcher.Backends[0].Weight != 1 || c.Dispatcher.Backends[1].Weight != 7 {
		t.Errorf("weights = %+v, want 1 (left out) and 7", c.Dispatcher.Backends)
	}
}

func TestSecret(t *testing.T) {
	c, warns, err := Check([]byte("[node]\nsecret = \""+testSecret+"\""+oneBackend), "t.toml", twoCPUs)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 || c.Node.Secret != testSecret || c.Node.SecretGenerated {
		t.Errorf("set secret: warns %v secret %q generated %v", warns, c.Node.Secret, c.Node.SecretGenerated)
	}
	a, _, _ := Parse(nil, "a")
	b, _, _ := Parse(nil, "b")
	if a.Node.Secret == b.Node.Secret {
		t.Error("two loads generated the same secret")
	}
	_, _, err = Check([]byte("[node]\nsecret = \"hunter2hunter2\""+oneBackend), "t.toml", twoCPUs)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("short secret: got %v, want an error that does not echo the secret", err)
	}
}

func TestIgnoredKeysWarning(t *testing.T) {
	_, warns, err := Parse([]byte("[node]\nsecret = \""+testSecret+"\"\n[io]\nport = \"socket\"\nqueues = [1]\ninput = \"x.pcap\""), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 2 || !strings.Contains(warns[0].String(), `only used with port "afxdp", and port is "socket"`) ||
		!strings.Contains(warns[1].String(), `only used with port "pcap"`) {
		t.Errorf("warnings = %v, want the afxdp-only and pcap-only ones", warns)
	}
	_, warns, _ = Parse([]byte("[node]\nsecret = \""+testSecret+"\"\n[io]\nport = \"afxdp\"\nqueues = [1]"), "t.toml")
	if len(warns) != 0 {
		t.Errorf("afxdp keys with port afxdp: warnings %v", warns)
	}
}

func TestPprofWarning(t *testing.T) {
	_, warns, err := Parse([]byte("[admin]\nlisten = \"0.0.0.0:9060\"\npprof = true"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 2 || warns[1].Key != "admin.pprof" || !strings.Contains(warns[1].String(), "not a loopback address") {
		t.Errorf("warnings = %v, want the secret one and admin.pprof", warns)
	}
}

// A full afxdp configuration is valid on a machine that has what it names,
// and Validate(nil) skips exactly the machine checks.
func TestValidateAgainstMachine(t *testing.T) {
	data := "[io]\nport = \"afxdp\"\ninterface = \"eth0\"\nqueues = [0, 1]\ncores = [1, 0]" + oneBackend
	c, _, err := Check([]byte(data), "t.toml", twoCPUs)
	if err != nil {
		t.Fatal(err)
	}
	small := fakeSys{cpus: []int{0, 2, 3, 4}, ifaces: map[string]int{"eth0": 1}}
	err = c.Validate(small)
	want := "config: io.cores[0]=1: this machine has CPUs 0,2-4\nconfig: io.queues[1]=1: interface eth0 has 1 queues (see /sys/class/net/eth0/queues)"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if err := c.Validate(nil); err != nil {
		t.Errorf("Validate(nil) checked the machine: %v", err)
	}
	broken := fakeSys{err: errors.New("no /sys")}
	if err := c.Validate(broken); err == nil || !strings.Contains(err.Error(), "config: io.cores: cannot check them against this machine: no /sys") {
		t.Errorf("unreadable machine: got %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	in := `
[node]
name = "edge-1"
addresses = ["192.0.2.1", "2001:db8::1", "sip.example.com"]
secret = "` + testSecret + `"
[io]
port = "afxdp"
listen = "[::]:5062"
interface = "eth0"
queues = [1, 0]
cores = [0, 1]
batch = 32
frame_size = 2048
frame_count = 16384
rx_ring = 4096
tx_ring = 1024
fill_ring = 8192
comp_ring = 512
xdp_mode = "native"
bind_mode = "copy"
poll_interval = "1m0.5s"
input = "in.pcap"
output = "out.pcap"
loop = true
[admin]
listen = ""
[dispatcher]
hashing = "rendezvous"
record_route = false
retry_after = "1m30s"
backends = [{ address = "10.0.0.1:5080", weight = 3 }, { address = "[2001:db8::2]:5080" }]
[dispatcher.probe]
interval = "750ms"
timeout = "250ms"
down_after = 5
up_after = 1
[log]
level = "debug"
format = "json"
`
	for _, src := range []struct {
		name string
		data []byte
	}{{"custom", []byte(in)}, {"embedded", sipedge.DefaultConfig}} {
		c1, _, err := Parse(src.data, src.name)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := c1.WriteTOML(&buf); err != nil {
			t.Fatal(err)
		}
		c2, _, err := Parse(buf.Bytes(), src.name+" written")
		if err != nil {
			t.Fatalf("%s: WriteTOML output does not parse: %v\n%s", src.name, err, buf.String())
		}
		c2.Node.SecretGenerated = c1.Node.SecretGenerated // not part of the file
		if !reflect.DeepEqual(c1, c2) {
			t.Errorf("%s: round trip changed the config:\nbefore %+v\nafter  %+v\ntext:\n%s", src.name, c1, c2, buf.String())
		}
	}
	c, _, _ := Parse([]byte(in), "custom")
	if got := c.IO.PollInterval.Std(); got != time.Minute+500*time.Millisecond {
		t.Errorf("poll_interval = %v", got)
	}
}

func TestCPUList(t *testing.T) {
	for _, tt := range []struct {
		cpus []int
		want string
	}{{nil, ""}, {[]int{0}, "0"}, {[]int{0, 1}, "0-1"}, {[]int{0, 2, 3, 4, 7, 9, 10}, "0,2-4,7,9-10"}} {
		if got := cpuList(tt.cpus); got != tt.want {
			t.Errorf("cpuList(%v) = %q, want %q", tt.cpus, got, tt.want)
		}
	}
}

func TestHost(t *testing.T) {
	cpus, err := Host().CPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("CPUs() = %v, %v: want at least the CPU this test runs on", cpus, err)
	}
	n, exists, err := Host().Queues("lo")
	if err != nil || !exists || n < 1 {
		t.Errorf("Queues(lo) = %d, %v, %v: want at least one queue", n, exists, err)
	}
	if _, exists, err := Host().Queues("nosuchif0"); exists || err != nil {
		t.Errorf("Queues(nosuchif0): exists=%v err=%v, want a clean no", exists, err)
	}
	fake := host{sysNet: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(fake.sysNet, "eth7", "queues", "rx-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"rx-1", "rx-2", "tx-0"} {
		if err := os.Mkdir(filepath.Join(fake.sysNet, "eth7", "queues", q), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if n, exists, err := fake.Queues("eth7"); n != 3 || !exists || err != nil {
		t.Errorf("Queues(eth7) = %d, %v, %v; want 3 rx queues", n, exists, err)
	}
}

func TestLoad(t *testing.T) {
	_, _, err := Load("/nonexistent/sipedge.toml")
	if err == nil || !strings.Contains(err.Error(), "config: reading /nonexistent/sipedge.toml") {
		t.Errorf("Load of a missing file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, sipedge.DefaultConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(p)
	if err != nil || c.Validate(twoCPUs) != nil {
		t.Errorf("Load(copy of the default) = %v; Validate = %v", err, c.Validate(twoCPUs))
	}
}

func TestAuthSection(t *testing.T) {
	const bk = "[[dispatcher.backends]]\naddress = \"127.0.0.1:5080\"\n"
	c, _, err := Check([]byte(bk+"[auth]\nenabled = true\nrealm = \"example.com\"\nusers_file = \"/etc/sipedge/users\"\ntrusted = [\"10.0.0.0/8\"]\n"), "t.toml", nil)
	if err != nil {
		t.Fatalf("a minimal [auth] is refused: %v", err)
	}
	if c.Auth.Store != "file" || c.Auth.Deadline.Std() != 50*time.Millisecond || len(c.Auth.Methods) != 4 {
		t.Errorf("defaults not applied: %+v", c.Auth)
	}
	_, _, err = Check([]byte("[auth]\nenabled = true\nmethods = [\"ACK\"]\nstore = \"ldap\"\ntrusted = [\"10.0.0.1\"]\nalgorithms = [\"SHA-512-256\"]\ndeadline = \"0s\"\n"), "t.toml", nil)
	if err == nil {
		t.Fatal("a broken [auth] is accepted")
	}
	for _, want := range []string{"auth.realm", "auth.methods[0]", "auth.store", "auth.trusted[0]", "auth.algorithms[0]", "auth.deadline"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no problem reported for %s in:\n%v", want, err)
		}
	}
	_, _, err = Check([]byte("[auth]\nenabled = true\nrealm = \"r\"\nstore = \"redis\"\n[auth.redis]\naddresses = [\"nohost\"]\n"), "t.toml", nil)
	if err == nil || !strings.Contains(err.Error(), "auth.redis.addresses[0]") {
		t.Errorf("bad redis address: %v", err)
	}
}

// Without Record-Route a backend's in-dialog requests have no signed token
// and are refused: the operator is told so at check time.
func TestRecordRouteOffWarning(t *testing.T) {
	_, warns, err := Parse([]byte("[node]\nsecret = \""+testSecret+"\"\n[dispatcher]\nrecord_route = false"+oneBackend), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || warns[0].Key != "dispatcher.record_route" || !strings.Contains(warns[0].Message, "403") {
		t.Errorf("warnings = %v, want the record_route one", warns)
	}
}

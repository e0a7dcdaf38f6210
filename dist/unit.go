package dist

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"text/template"
)

// User is the system user the service runs as, made by the package's
// postinst and by `make install`.
const User = "sipedge"

// Capabilities are the only ones the service holds (ambient and bounding
// set): see the unit's comment for why each. CAP_PERFMON is there because
// without it the BPF verifier refuses the XDP program ("pointer arithmetic
// with it prohibited for !root": its variable IPv4 header length is added
// to a packet pointer, which unprivileged-for-Spectre programs may not do;
// perfmon_capable() lifts that), as TestLeastPrivilegeAFXDP showed.
var Capabilities = []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF", "CAP_PERFMON", "CAP_IPC_LOCK"}

//go:embed sipedge.service.tmpl
var unitTemplate string

var unitTmpl = template.Must(template.New("sipedge.service").Parse(unitTemplate))

// Unit is what the service file is rendered from.
type Unit struct {
	// Bin is the installed appliance binary, such as /usr/bin/sipedge.
	Bin string
	// Config is the installed configuration, such as /etc/sipedge/config.toml.
	Config string
	// Cores are [io] cores: the service may run only there.
	Cores []int
}

// Render returns the unit file.
func (u Unit) Render() (string, error) {
	if !strings.HasPrefix(u.Bin, "/") || !strings.HasPrefix(u.Config, "/") {
		return "", fmt.Errorf("dist: unit paths must be absolute (binary %q, config %q): systemd refuses relative ones", u.Bin, u.Config)
	}
	if len(u.Cores) == 0 {
		return "", fmt.Errorf("dist: no cores for CPUAffinity: [io] cores lists at least one")
	}
	var b strings.Builder
	err := unitTmpl.Execute(&b, map[string]string{
		"Bin": u.Bin, "Config": u.Config, "User": User,
		"Caps": strings.Join(Capabilities, " "), "CPUAffinity": CPUAffinity(u.Cores),
	})
	return b.String(), err
}

// CPUAffinity is the unit's CPUAffinity= value for cores.
func CPUAffinity(cores []int) string {
	s := make([]string, len(cores))
	for i, c := range cores {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " ")
}

package tune

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sipedge/appliance/config"
)

// Where the service's unit may be installed (the .deb, make install with
// PREFIX /usr/local or /usr, or by hand), in systemd's order of precedence,
// and the drop-in tune writes.
var (
	unitPaths = []string{"/etc/systemd/system/sipedge.service", "/usr/local/lib/systemd/system/sipedge.service",
		"/lib/systemd/system/sipedge.service", "/usr/lib/systemd/system/sipedge.service"}
	dropInDir = "/etc/systemd/system/sipedge.service.d"
	dropIn    = dropInDir + "/cores.conf"
)

// unitAffinity compares the installed unit's CPUAffinity (with its
// drop-ins) with io.cores: the service may only run where its workers are
// pinned, or a core added to [io] later fails the start-up check. Nothing
// is compared when the unit is not installed.
func (p *Plan) unitAffinity(h Host, io config.IO) {
	unit := ""
	for _, u := range unitPaths {
		if _, err := os.Stat(h.path(u)); err == nil {
			unit = u
			break
		}
	}
	if unit == "" {
		return
	}
	files := []string{unit}
	confs, _ := filepath.Glob(h.path(dropInDir + "/*.conf"))
	slices.Sort(confs)
	for _, c := range confs {
		files = append(files, strings.TrimPrefix(c, strings.TrimSuffix(h.Root, "/")))
	}
	var cur []string
	for _, f := range files {
		b, err := h.read(f)
		if err != nil {
			p.unknown("CPUAffinity of sipedge.service", err, "io.cores")
			return
		}
		for _, line := range strings.Split(b, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CPUAffinity="); ok {
				if v == "" {
					cur = nil // an empty assignment resets the list
				} else {
					cur = append(cur, strings.Fields(v)...)
				}
			}
		}
	}
	want := make([]string, len(io.Cores))
	for i, c := range io.Cores {
		want[i] = strconv.Itoa(c)
	}
	have, _ := parseCPUList(strings.Join(cur, ","))
	should, _ := parseCPUList(strings.Join(want, ","))
	is := strings.Join(cur, " ")
	if is == "" {
		is = "any CPU"
	}
	content := "[Service]\nCPUAffinity=\nCPUAffinity=" + strings.Join(want, " ") + "\n"
	it := Item{Name: "CPUAffinity of sipedge.service", Is: is, Should: strings.Join(want, " ") + " (io.cores)", State: OK,
		Why:     "the service may run only where its workers are pinned; a core missing there fails the start",
		Command: "printf '" + strings.ReplaceAll(content, "\n", `\n`) + "' > " + dropIn + " && systemctl daemon-reload"}
	if !equalSets(have, should) {
		it.State = Change
		it.apply = func() error {
			if err := os.MkdirAll(h.path(dropInDir), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(h.path(dropIn), []byte(content), 0o644); err != nil {
				return err
			}
			if h.Root == "/" {
				if _, err := os.Stat("/run/systemd/system"); err == nil {
					return exec.Command("systemctl", "daemon-reload").Run()
				}
			}
			return nil
		}
	}
	p.add(it)
}

func equalSets(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

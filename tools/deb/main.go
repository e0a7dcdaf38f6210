package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// installed maps each binary `make build` writes to its name on the box.
var installed = map[string]string{
	"appliance":     "sipedge",
	"sipedge-users": "sipedge-users",
	"sipreplay":     "sipreplay",
	"sipgen":        "sipgen",
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("deb", flag.ContinueOnError)
	bin := fs.String("bin", "", "`dir`ectory of the built binaries (make build writes bin/)")
	unit := fs.String("unit", "", "the rendered systemd unit `file` (sipedge unit > FILE)")
	conf := fs.String("config", "", "the configuration `file` shipped as /etc/sipedge/config.toml")
	scripts := fs.String("scripts", "", "`dir`ectory of postinst, prerm and postrm (dist/deb)")
	version := fs.String("version", "", "package `version` (git describe output is made Debian-valid)")
	arch := fs.String("arch", "amd64", "Debian `arch`itecture of the binaries")
	out := fs.String("o", "", "output .deb `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, v := range map[string]string{"-bin": *bin, "-unit": *unit, "-config": *conf, "-scripts": *scripts, "-version": *version, "-o": *out} {
		if v == "" {
			return fmt.Errorf("%s is required (make deb passes every flag)", name)
		}
	}
	info, err := packageInfo(*bin, *unit, *conf, *scripts, debVersion(*version), *arch)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("building %s: %w", *out, err)
	}
	return f.Close()
}

// packageInfo describes the package: binaries in /usr/bin, the unit in
// /lib/systemd/system, the configuration as a conffile (dpkg keeps an
// edited one), and the maintainer scripts.
func packageInfo(bin, unit, conf, scripts, version, arch string) (*nfpm.Info, error) {
	var contents files.Contents
	for src, dst := range installed {
		p := filepath.Join(bin, src)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("binary %s: %w (run make build first)", p, err)
		}
		contents = append(contents, &files.Content{Source: p, Destination: "/usr/bin/" + dst,
			FileInfo: &files.ContentFileInfo{Mode: 0o755}})
	}
	contents = append(contents,
		&files.Content{Source: unit, Destination: "/lib/systemd/system/sipedge.service",
			FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		&files.Content{Source: conf, Destination: "/etc/sipedge/config.toml", Type: files.TypeConfig,
			FileInfo: &files.ContentFileInfo{Mode: 0o640}},
	)
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if _, err := os.Stat(filepath.Join(scripts, s)); err != nil {
			return nil, fmt.Errorf("maintainer script: %w", err)
		}
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "sipedge",
		Arch:          arch,
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "sipedge maintainers <sipedge@localhost>",
		Description:   "SIP signaling edge appliance (AF_XDP, per-core pipelines)\nStateless SIP proxy for edge boxes: AF_XDP or kernel sockets, digest auth,\nCall-ID dispatching, flood guard. Installed, not started.",
		MTime:         time.Unix(0, 0).UTC(), // reproducible
		Overridables: nfpm.Overridables{
			// useradd and userdel in the maintainer scripts.
			Depends:  []string{"passwd"},
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scripts, "postinst"),
				PreRemove:   filepath.Join(scripts, "prerm"),
				PostRemove:  filepath.Join(scripts, "postrm"),
			},
		},
	})
	if err := nfpm.Validate(info); err != nil {
		return nil, err
	}
	return info, nil
}

var (
	released = regexp.MustCompile(`^[0-9]+\.[0-9][A-Za-z0-9.+~-]*$`)
	notDeb   = regexp.MustCompile(`[^A-Za-z0-9.+~]`)
)

// debVersion makes a git describe output a Debian version: a release tag
// keeps its numbers ("v1.2.0-3-gabc" becomes "1.2.0+3+gabc"), anything else
// is a snapshot sorting before every release ("53f491e-dirty" becomes
// "0~git53f491e.dirty").
func debVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if released.MatchString(v) {
		return strings.ReplaceAll(v, "-", "+")
	}
	return "0~git" + notDeb.ReplaceAllString(v, ".")
}

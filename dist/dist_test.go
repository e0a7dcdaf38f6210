package dist

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// need skips a test (or fails it when CI=true) without tool, which
// Debian package deb ships (make test-deps installs it).
func need(t *testing.T, tool, deb string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	msg := tool + " not found: apt-get install " + deb + " (make test-deps)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// needRoot skips a test that installs for real (or fails it in CI).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root: it installs a package and creates a system user"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// run runs a command in the repository root and fails the test on error.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func goEnv() []string {
	return []string{"PATH=" + filepath.Join(runtime.GOROOT(), "bin") + ":" + os.Getenv("PATH")}
}

// TestUnitVerify: the unit passes systemd-analyze verify, and holds the
// user, the exact capabilities and CPUAffinity of [io] cores.
func TestUnitVerify(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	bin := filepath.Join(dir, "sipedge")
	true_, err := os.ReadFile("/bin/true") // verify wants an executable where ExecStart points
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, true_, 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := Unit{Bin: bin, Config: "/etc/sipedge/config.toml", Cores: []int{0, 2}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sipedge.service")
	if err := os.WriteFile(path, []byte(u), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", path)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, u)
	}
	caps := "CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON CAP_IPC_LOCK"
	for _, want := range []string{"User=sipedge\n", "AmbientCapabilities=" + caps + "\n", "CapabilityBoundingSet=" + caps + "\n",
		"CPUAffinity=0 2\n", "LimitMEMLOCK=infinity\n", "Type=notify\n", "WatchdogSec=", "Restart=on-failure\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n", "NoNewPrivileges=yes\n", "ExecStart=" + bin + " run -c /etc/sipedge/config.toml\n",
		"ExecStartPre=-+" + bin + " tune -c /etc/sipedge/config.toml -apply\n"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if _, err := (Unit{Bin: "sipedge", Config: "/etc/x", Cores: []int{0}}).Render(); err == nil {
		t.Error("a relative binary path was accepted: systemd refuses it")
	}
}

// files lists the regular files and symlinks under root.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return out
}

// TestMakeInstallUninstall stages make install in a DESTDIR: the files land
// where the unit and the docs say, an edited configuration survives a
// reinstall and an uninstall, and an unedited install leaves nothing.
func TestMakeInstallUninstall(t *testing.T) {
	need(t, "make", "make")
	dest := t.TempDir()
	vars := []string{"DESTDIR=" + dest, "PREFIX=/usr"}
	run(t, goEnv(), "make", append([]string{"install"}, vars...)...)
	for _, f := range []string{"/usr/bin/sipedge", "/usr/bin/sipedge-users", "/usr/bin/sipreplay", "/usr/bin/sipgen",
		"/usr/lib/systemd/system/sipedge.service", "/etc/sipedge/config.toml"} {
		if _, err := os.Stat(dest + f); err != nil {
			t.Errorf("make install: %v", err)
		}
	}
	unit, _ := os.ReadFile(dest + "/usr/lib/systemd/system/sipedge.service")
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/sipedge run -c /etc/sipedge/config.toml\n") {
		t.Errorf("the unit does not run the installed binary on the installed config:\n%s", unit)
	}
	out := run(t, nil, dest+"/usr/bin/sipedge", "help")
	for _, sect := range []string{"NAME", "SYNOPSIS", "COMMANDS", "FILES", "SIGNALS", "EXIT STATUS"} {
		if !strings.Contains(out, "\n"+sect+"\n") && !strings.HasPrefix(out, sect+"\n") {
			t.Errorf("help has no %s section", sect)
		}
	}

	conf := dest + "/etc/sipedge/config.toml"
	edited := "# edited by the operator\n"
	orig, _ := os.ReadFile(conf)
	if err := os.WriteFile(conf, append(orig, edited...), 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, goEnv(), "make", append([]string{"install"}, vars...)...)
	if b, _ := os.ReadFile(conf); !strings.HasSuffix(string(b), edited) {
		t.Error("make install overwrote an edited configuration")
	}
	if _, err := os.Stat(conf + ".new"); err != nil {
		t.Errorf("the new default is not beside the edited configuration: %v", err)
	}
	run(t, nil, "make", append([]string{"uninstall"}, vars...)...)
	if left := files(t, dest); len(left) != 1 || left[0] != "/etc/sipedge/config.toml" {
		t.Errorf("uninstall with an edited configuration left %v, want only /etc/sipedge/config.toml", left)
	}

	run(t, goEnv(), "make", append([]string{"install"}, vars...)...)
	os.WriteFile(conf, orig, 0o640) // back to the shipped default
	run(t, nil, "make", append([]string{"uninstall"}, vars...)...)
	if left := files(t, dest); len(left) != 0 {
		t.Errorf("uninstall left %v", left)
	}
}

// TestDebInstallPurge installs the .deb for real (as root), checks what
// it put where and that it started nothing, that the service user can
// read the configuration and others cannot, that an edited conffile
// survives a reinstall, and that purge leaves no file and no user.
func TestDebInstallPurge(t *testing.T) {
	needRoot(t)
	need(t, "dpkg", "dpkg")
	need(t, "setpriv", "util-linux")
	need(t, "make", "make")
	// The test could not restore a machine that already has the package
	// or the user: it leaves them alone (and fails in CI, whose machine
	// should have neither).
	leave := t.Skip
	if os.Getenv("CI") == "true" {
		leave = t.Fatal
	}
	if exec.Command("dpkg", "-s", "sipedge").Run() == nil {
		leave("the sipedge package is installed on this machine: not touching it")
	}
	if _, err := user.Lookup(User); err == nil {
		leave("a sipedge user exists on this machine: purge would remove it, not touching it")
	}
	deb := filepath.Join(t.TempDir(), "sipedge.deb")
	run(t, goEnv(), "make", "deb", "DEB="+deb)
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "sipedge").Run() })
	run(t, nil, "dpkg", "-i", deb)

	shipped := []string{"/usr/bin/sipedge", "/usr/bin/sipedge-users", "/usr/bin/sipreplay", "/usr/bin/sipgen",
		"/lib/systemd/system/sipedge.service", "/etc/sipedge/config.toml"}
	for _, f := range shipped {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after dpkg -i: %v", err)
		}
	}
	if st := run(t, nil, "dpkg", "-s", "sipedge"); !strings.Contains(st, "Conffiles:\n /etc/sipedge/config.toml") {
		t.Errorf("config.toml is not a conffile:\n%s", st)
	}
	u, err := user.Lookup(User)
	if err != nil {
		t.Fatalf("postinst made no %s user: %v", User, err)
	}
	if pw := run(t, nil, "getent", "passwd", User); !strings.HasSuffix(strings.TrimSpace(pw), ":/usr/sbin/nologin") {
		t.Errorf("the service user can log in: %s", pw)
	}
	if out := run(t, nil, "stat", "-c", "%a %U:%G", "/etc/sipedge/config.toml"); strings.TrimSpace(out) != "640 root:sipedge" {
		t.Errorf("config.toml is %s, want 640 root:sipedge (it holds the cluster secret)", out)
	}
	if pids := running("/usr/bin/sipedge"); len(pids) > 0 {
		t.Errorf("installing started the appliance (pids %v): postinst must start nothing", pids)
	}
	// The service user reads its configuration; nobody else does.
	run(t, nil, "setpriv", "--reuid="+u.Uid, "--regid="+u.Gid, "--init-groups", "--", "/usr/bin/sipedge", "check", "-c", "/etc/sipedge/config.toml")
	if out, err := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
		"/usr/bin/sipedge", "check", "-c", "/etc/sipedge/config.toml").CombinedOutput(); err == nil {
		t.Errorf("user nobody read the configuration:\n%s", out)
	}

	// The operator moves the worker to CPU 1: tune -apply gives the unit a
	// drop-in with that CPUAffinity, which purge must take too.
	const edit = "# edited on the box\n"
	conf, err := os.ReadFile("/etc/sipedge/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(conf), "\ncores = [0]\n", "\ncores = [1]\n", 1) + edit
	if err := os.WriteFile("/etc/sipedge/config.toml", []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if runtime.NumCPU() > 1 {
		out, _ := exec.Command("/usr/bin/sipedge", "tune", "-c", "/etc/sipedge/config.toml", "-apply").CombinedOutput()
		if b, err := os.ReadFile("/etc/systemd/system/sipedge.service.d/cores.conf"); err != nil || !strings.Contains(string(b), "\nCPUAffinity=1\n") {
			t.Errorf("tune -apply wrote no CPUAffinity=1 drop-in (%v):\n%s\n%s", err, b, out)
		}
	}
	run(t, nil, "dpkg", "-i", "--force-confold", deb)
	if b, _ := os.ReadFile("/etc/sipedge/config.toml"); string(b) != edited {
		t.Error("reinstalling the package overwrote the edited conffile")
	}
	run(t, nil, "dpkg", "-r", "sipedge")
	if _, err := os.Stat("/usr/bin/sipedge"); err == nil {
		t.Error("dpkg -r left /usr/bin/sipedge")
	}
	if _, err := os.Stat("/etc/sipedge/config.toml"); err != nil {
		t.Errorf("dpkg -r (not purge) removed the edited conffile: %v", err)
	}
	run(t, nil, "dpkg", "--purge", "sipedge")
	for _, f := range append(shipped, "/etc/sipedge", "/etc/systemd/system/sipedge.service.d") {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("purge left %s", f)
		}
	}
	if _, err := user.Lookup(User); err == nil {
		t.Error("purge left the sipedge user")
	}
	if _, err := user.LookupGroup(User); err == nil {
		t.Error("purge left the sipedge group")
	}
}

// running returns the pids whose executable is exe.
func running(exe string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && l == exe {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

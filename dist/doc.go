// Package dist owns what installs the appliance on an edge box: the
// systemd unit (rendered from [io] cores so CPUAffinity matches the
// workers' pinning), the Debian maintainer scripts, and the file layout
// that `make install` and the .deb (tools/deb) share. Its tests install
// both for real and check that nothing is left after removal.
//
// dist must not import pipeline, afxdp or the daemon (appliance): it
// describes the installation, it does not run anything of it.
package dist

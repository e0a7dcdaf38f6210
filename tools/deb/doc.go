// Command deb builds the sipedge Debian package with
// github.com/goreleaser/nfpm/v2 as a library, from files `make deb` has
// prepared (binaries, the rendered unit, config.toml, dist/deb's
// maintainer scripts): no dpkg-buildpackage, no debian/ tree.
//
// It is its own module so that nfpm's large dependency tree stays out of
// the appliance's go.mod; it must not import the appliance's packages
// (the Makefile hands it files instead).
package main

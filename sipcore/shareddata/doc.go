// Package shareddata finds the read-only shared test data (conformance
// messages, captures, notes) that lives beside the repository, not in it:
// $SIPEDGE_SHARED when set, else <repo root>/../shared, the repo root being
// the nearest folder above the working directory whose go.mod says
// `module sipedge` (so it works from any package, at any depth, and from the
// bench module, which has a go.mod of its own).
//
// It owns: that lookup, for tests (Dir: absent data fails the test under
// CI=true and skips it otherwise, naming the path looked for) and for
// commands (Find).
//
// shareddata imports the standard library only and nothing of this module.
// It sits under sipcore so that sipcore's own tests can use it: sipcore
// itself still imports nothing of the module, and this package adds no
// dependency to it or to anything that imports it outside tests.
package shareddata

// Package vethtest is the rig for privileged networking tests and
// benchmarks: a veth pair whose peer end sits in a fresh network
// namespace, with addresses, commands and Go sockets inside that
// namespace.
//
// Create, Close and the methods that return errors are the rig itself,
// for programs that run outside go test (bench's echo and harness).
// Require, New, Exec and ListenUDP wrap them for tests: they skip or fail
// the test and remove what they built when it ends.
//
// vethtest is imported by _test.go files and by bench. It must not import
// afxdp, pipeline, sipcore or appliance: it knows about interfaces, not
// about the code under test.
package vethtest

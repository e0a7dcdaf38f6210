// Package vethtest is the test rig for privileged networking tests: a veth
// pair whose peer end sits in a fresh network namespace, with addresses,
// commands and Go sockets inside that namespace, all removed when the test
// ends.
//
// vethtest is imported only by _test.go files. It must not import afxdp,
// pipeline, sipcore or appliance: it knows about interfaces, not about the
// code under test.
package vethtest

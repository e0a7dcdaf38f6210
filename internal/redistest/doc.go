// Package redistest runs real redis-server processes for tests: one
// standalone server on a free loopback port (or a given one, to start a
// store again where its clients look for it), or a Redis Cluster of three
// masters with one replica each; every process is stopped by its pid when
// the test ends. It also writes users the way the auth stage's Redis store
// reads them, and puts a slow TCP proxy in front of a server to play a bad
// day at the store.
//
// It is shared by the tests of the stages that keep state in Redis (auth's
// credential store, the registrar's bindings, location) and the
// appliance's end-to-end tests, which is why it sits at the root's
// internal/ rather than under one stage. Tests only: it may import sipcore
// and rueidis, never appliance, pipeline or a stage, and the daemon must
// never import it.
package redistest

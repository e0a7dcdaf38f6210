// Package redistest starts real redis-server processes for tests: one
// standalone server, or a Redis Cluster of three masters with one replica
// each, on free loopback ports, each stopped by its pid at the end of the
// test. Tests only; it must not be imported by the daemon.
package redistest

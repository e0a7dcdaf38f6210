// Package redistest runs a real redis-server for tests (started and
// stopped by pid, on a free loopback port), writes users the way
// redisstore reads them, and puts a slow TCP proxy in front of it to play
// a bad day at the store.
//
// It is for tests only: it may import sipcore and rueidis, never
// appliance or a stage.
package redistest

// Package redisstore is the Redis (and Redis Cluster) credential store of
// the auth stage, on github.com/redis/rueidis.
//
// Key schema: one hash per user,
//
//	sipedge:user:<realm>:<user>   fields ha1md5, ha1sha256 (lowercase hex)
//
// (the prefix is configurable). A user without the key does not exist; a
// field left out means that HA1 is absent; at least one must be set.
//
// Changes are pushed, not polled: every connection turns on RESP3 client
// tracking in broadcast mode for the prefix (CLIENT TRACKING ON BCAST PREFIX
// sipedge:user:), so Redis sends an invalidation for every write or
// deletion under it, including the creation of a user the nodes had cached
// as absent, and the store forwards it to auth.Invalidator. When a
// connection drops, invalidations may have been missed: the cached users
// keep working while Redis is down, and once a PING of every node answers
// again the whole cache is invalidated, so that nothing stale survives a
// reconnection. Reconnection attempts back off exponentially (100ms to 5s).
//
// redisstore may import pipeline/stages/auth, sipcore and rueidis; it must not
// import appliance, tools or any port.
package redisstore

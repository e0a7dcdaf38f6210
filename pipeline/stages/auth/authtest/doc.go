// Package authtest drives the auth stage in a real pipeline worker over an
// in-memory port, with a digest client that answers challenges, for the
// tests of auth and of its stores (redisstore).
//
// authtest may import pipeline, pipeline/stages/auth, pipeline/memport and
// sipcore; only tests may import it.
package authtest

// Package spsc is the one bounded single-producer single-consumer ring of
// the pipeline: helpers' answers to a worker, a worker's requests to its
// helper, ban requests to the guard's goroutine, operator commands and
// cache invalidations to a worker.
//
// Each index is written by one side only, so two atomics order the slot
// writes with their publication: no lock, no channel, no allocation after
// New. The padding keeps the indices on separate cache lines so the two
// sides do not false-share.
//
// spsc imports nothing of sipedge; it must stay that way (everything in
// the pipeline may use it: the worker's parker and FuncHelper, and the
// stages below pipeline/stages for their own rings).
package spsc

// Package bench holds the benchmark harness and side-by-side comparisons
// with other SIP stacks and proxies. It is its own Go module (with a replace
// to the main module) so that the product never depends on a comparison
// stack.
//
// bench may import anything of sipedge; nothing in sipedge may import bench.
package bench

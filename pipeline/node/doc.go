// Package node is what this appliance is, as every stage sees it: its
// cluster key and the names and ports that mean "me" in a Request-URI or a
// Route ([node] and the listen address). It is compiled once and shared
// read-only by the stages of every worker.
//
// node may import sipcore only; it must not import pipeline or any stage.
package node

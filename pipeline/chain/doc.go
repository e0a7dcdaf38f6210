// Package chain is the chain file: the order of the stages (chain.go,
// Default, one line per stage, as CoreDNS's plugin.cfg), and the one way
// to turn the stages a node has into a worker's stage list in that order
// (Chain.Makers). Tests keep or add stages by name (Only, Insert), never by
// position.
//
// chain may import pipeline, pipeline/node and every stage package; it must
// not import appliance, tools or bench, nor anything that opens sockets.
package chain

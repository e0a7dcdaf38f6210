// Command parsecmp prints sipcore's and sipgo's parse cost for the same
// messages side by side (make bench-parse).
package main

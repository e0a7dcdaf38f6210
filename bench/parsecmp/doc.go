// Package parsecmp times sipcore's parser against github.com/emiago/sipgo's
// on the same messages, in the same process, so the two figures are
// comparable: same machine, same moment, same bytes.
package parsecmp

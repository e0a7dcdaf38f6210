// Package mediatest starts real rtpengine relays for tests (userspace,
// table -1, a free ng port on loopback and a media port range of its own,
// stopped by pid at cleanup) and asks them what they hold (list, query)
// over ng.
//
// It is for tests only: it may import the testing package, media/ng and
// nothing else of the project.
package mediatest

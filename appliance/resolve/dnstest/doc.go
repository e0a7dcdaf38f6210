// Package dnstest is an authoritative DNS server for tests: it runs
// in-process on a free loopback UDP port and answers from records the
// test sets and changes while it runs, and it can be taken down (queries
// go unanswered) and brought back. It counts the questions it gets, so a
// test can prove a lookup was skipped.
//
// dnstest may import github.com/miekg/dns and the standard library only;
// nothing but tests imports it.
package dnstest

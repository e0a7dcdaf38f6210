// Package ng speaks rtpengine's ng control protocol over UDP: a cookie, a
// space and a bencoded dictionary per datagram, the reply echoing the
// cookie. It holds its own small bencode codec (the module proxy serves no
// bencode module, and the codec must not allocate when encoding, since
// requests are built for every call) and a blocking client that
// retransmits a request with the same cookie until a deadline (rtpengine
// caches replies by cookie, so a retransmitted offer is answered once).
//
// ng knows nothing of SIP, stages or workers: the media stage builds the
// dictionaries and reads the replies. It must not import any other
// package of the project.
package ng

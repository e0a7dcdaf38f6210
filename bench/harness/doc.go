// Package harness runs sipedge's side-by-side benchmarks (make bench) and
// their short check mode (make bench-check, part of make test):
//
//   - the parser, sipcore against sipgo (package parsecmp);
//   - the pipeline per core, through `sipreplay --into pipeline` on a
//     sipgen capture;
//   - end to end: the same sipp load through Kamailio 5.6 as a stateless
//     Call-ID dispatcher, and the appliance on kernel sockets and on
//     AF_XDP over a veth pair into a namespace it creates, in each [io]
//     wait mode (appliance-PORT-WAIT), at rising rates: CPU per call
//     (schedstat, every thread) and context switches per call, idle CPU,
//     and OPTIONS round trips timed by its own client during the load;
//   - open-loop capacity: a sipgen capture with the backends' responses
//     replayed by sipreplay at rising fixed rates into the appliance, whose
//     destinations are sockets never read; loss from its /metrics.
//
// Every process it starts (kamailio, sipp, the appliance) runs in its own
// process group and is killed by pid when a run ends, fails or is
// interrupted. Traffic stays on loopback or inside the harness's own
// network namespace. Results go out as JSON, a markdown table and PNG
// plots.
//
// harness may import anything of sipedge and of the bench module; nothing
// in sipedge may import it.
package harness

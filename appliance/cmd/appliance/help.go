package main

import (
	"fmt"
	"io"
)

// manual is `appliance help`: written as a man page so that an operator
// on a box without the repository finds everything in one place.
const manual = `NAME
    sipedge - SIP signaling edge appliance (AF_XDP or kernel UDP sockets,
    one run-to-completion pipeline per core)

SYNOPSIS
    sipedge run     [-c FILE]
    sipedge check   [-c FILE]
    sipedge tune    [-c FILE] [-apply]
    sipedge drain   [-c FILE] [-undrain] [-wait] [-admin HOST:PORT]
    sipedge unit    [-c FILE] [-bin PATH] [-config PATH]
    sipedge version
    sipedge help

    Installed as /usr/bin/sipedge (the .deb) or PREFIX/bin/sipedge (make
    install); bin/appliance in the build tree.

DESCRIPTION
    A stateless SIP proxy for edge boxes: each worker, pinned to one core,
    takes datagrams from its NIC queue (AF_XDP) or socket and runs each to
    completion through the stages of the chain (README: Architecture).
    The configuration is one TOML file; every key is documented in
    the shipped config.toml.

COMMANDS
    run     Run the daemon in the foreground. Under systemd (Type=notify) it
            reports readiness and feeds the watchdog only while every worker
            loops.
    check   Validate the configuration against this machine and print the
            effective one (defaults filled in) or every problem. With
            io.port = "afxdp" it also warns where the NIC, IRQs or sysctls do
            not match [io] (what sipedge tune would change).
    tune    Read the NIC named by io.interface (channels, IRQ affinity, RSS
            hash fields, rings, GRO/LRO, XDP support) and the system
            (busy-poll sysctls, CPU isolation, irqbalance) and print a plan:
            what is, what should be, and the command. With -apply, apply
            every change it can (idempotent: a second run changes nothing).
    drain   Take the running node out of service without dropping calls
            (POST /drain on its admin server): /healthz answers 503 so the
            load balancer or BGP speaker withdraws it, new INVITEs get
            [drain] answer, calls under way flow on until the node is idle.
            -undrain takes new calls again; -wait returns once drained.
    unit    Print the systemd unit for this configuration (CPUAffinity from
            [io] cores).
    version Print the version.

OPTIONS
    -c FILE      configuration file (default: the embedded config.toml)
    -apply       tune: apply the plan instead of only printing it
    -undrain     drain: take new calls again
    -wait        drain: wait until the node is drained, at most drain.timeout
    -admin ADDR  drain: the admin server (default: admin.listen)
    -bin PATH    unit: the installed binary (default /usr/bin/sipedge)
    -config PATH unit: the installed configuration (default
                 /etc/sipedge/config.toml)

FILES
    /etc/sipedge/config.toml           the configuration (a conffile: never
                                       overwritten once edited)
    /lib/systemd/system/sipedge.service the unit (make install: PREFIX/lib/...)
    /etc/systemd/system/sipedge.service.d/cores.conf
                                       CPUAffinity written by tune -apply
                                       when [io] cores change

SIGNALS
    SIGHUP           re-read the configuration; a file that does not check
                     keeps the running one (systemctl reload sipedge)
    SIGUSR1          drain (as sipedge drain); SIGUSR2 undrain
    SIGTERM          drain first for at most [drain] on_sigterm while calls
                     are under way (a second SIGTERM stops at once), then stop
    SIGINT           stop: transmit what was built, detach the XDP program

PRIVILEGES
    The service runs as user sipedge with exactly CAP_NET_ADMIN, CAP_NET_RAW,
    CAP_BPF, CAP_PERFMON (the BPF verifier refuses the XDP program's
    packet-pointer arithmetic without it) and CAP_IPC_LOCK (the UMEM is then
    not charged to RLIMIT_MEMLOCK). io.port = "socket" needs none of them.

ENVIRONMENT
    NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID   set by systemd
    GOMAXPROCS   left alone when set; otherwise raised to workers + 1

EXIT STATUS
    0 success; 1 failure (a message says what to do); 2 usage error;
    3 tune without -apply: the system differs from the plan.

SEE ALSO
    systemd.exec(5), ethtool(8), README.md "Install on an edge box"
`

// help prints the manual.
func help(w io.Writer) { fmt.Fprint(w, manual) }

// Package tune compares the NIC and the system with what [io] of the
// configuration needs, and changes them: channels against io.queues, each
// queue's IRQ affinity against its worker's core, RSS hash fields for UDP,
// NIC ring sizes, GRO/LRO, the XDP support of the driver, the busy-poll
// knobs of io.wait, and the CPU isolation of the worker cores. A Plan is a
// list of Items (what is, what should be, the command); Apply carries out
// those it can, idempotently.
//
// It reads the machine through Host: files under a root (sysfs, procfs;
// tests point it at recorded trees of real NICs) and an Ethtool (the
// SIOCETHTOOL ioctl live, a recording in tests).
//
// tune must not import pipeline, afxdp or the daemon: `appliance tune`,
// `appliance check` and the daemon's start-up warning use it, it uses only
// the configuration.
package tune

package afxdp

import (
	"testing"

	"github.com/cilium/ebpf"
)

// TestProgramVerifies loads the program into the kernel without attaching
// it, so a verifier rejection shows up even where no veth can be made.
func TestProgramVerifies(t *testing.T) {
	requireRoot(t)
	mk := func(spec *ebpf.MapSpec) *ebpf.Map {
		m, err := ebpf.NewMap(spec)
		if err != nil {
			t.Fatalf("creating map %s: %v", spec.Name, err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	banned := mk(&ebpf.MapSpec{Name: "b", Type: ebpf.Hash, KeySize: 16, ValueSize: 8, MaxEntries: 16})
	ports := mk(&ebpf.MapSpec{Name: "p", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 65536})
	xsks := mk(&ebpf.MapSpec{Name: "x", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	stats := mk(&ebpf.MapSpec{Name: "s", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: statCount})
	for _, v6Bits := range []int{0, 64, 56} { // exact, /64, a mask inside the first word
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Type: ebpf.XDP, License: "Dual MIT/GPL",
			Instructions: buildProgram(banned.FD(), ports.FD(), xsks.FD(), stats.FD(), v6Bits),
		})
		if err != nil {
			t.Fatalf("verifier, IPv6 ban prefix /%d: %+v", v6Bits, err)
		}
		prog.Close()
	}
}

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// System is what Validate needs to know about the machine the appliance is
// going to run on. Host returns the real one; tests provide fakes.
type System interface {
	// CPUs returns the ids of the CPUs this process may run on, ascending.
	CPUs() ([]int, error)
	// Queues returns the number of receive queues of the network interface
	// name, or exists=false when there is no such interface.
	Queues(name string) (queues int, exists bool, err error)
}

// Host returns the System of this machine: CPUs from the process's affinity
// mask (sched_getaffinity, so containers and taskset are honoured), and
// interfaces and their queues from /sys/class/net.
func Host() System { return host{sysNet: "/sys/class/net"} }

type host struct {
	sysNet string
}

func (h host) CPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("reading this process's CPU affinity (sched_getaffinity): %w", err)
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

func (h host) Queues(name string) (int, bool, error) {
	dir := filepath.Join(h.sysNet, name)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("looking up interface %s: %w", name, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "queues"))
	if err != nil {
		return 0, true, fmt.Errorf("counting the queues of interface %s: %w", name, err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "rx-") {
			n++
		}
	}
	return n, true, nil
}

// cpuList formats CPU ids the way the kernel does in cpuset files and
// lscpu ("0-3,6,8-11"), so the operator recognises it.
func cpuList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

package tune

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// recorded is a NIC's ethtool answers as recorded in testdata/NAME/ethtool.json
// (channels, rings, rx-flow-hash, offloads); it takes changes the way the
// driver would, refusing what is beyond its maximums.
type recorded struct {
	Driver_        string            `json:"driver"`
	Channels_      *Channels         `json:"channels"`
	Rings_         *Rings            `json:"rings"`
	Rxfh           map[string]uint64 `json:"rxfh"`
	Gro            bool              `json:"gro"`
	Lro            bool              `json:"lro"`
	LroUnsupported bool              `json:"lro_unsupported"`
	sets           int
}

func loadRecorded(t *testing.T, dir string) *recorded {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ethtool.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r recorded
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func flowName(flow uint32) string {
	if flow == HashUDP6 {
		return "udp6"
	}
	return "udp4"
}

func (r *recorded) Driver(string) (string, error) { return r.Driver_, nil }

func (r *recorded) Channels(string) (Channels, error) {
	if r.Channels_ == nil {
		return Channels{}, ErrNotSupported
	}
	return *r.Channels_, nil
}

func (r *recorded) SetChannels(_ string, c Channels) error {
	m := r.Channels_
	if m == nil {
		return ErrNotSupported
	}
	if c.Combined > m.MaxCombined || c.Rx > m.MaxRx || c.Combined+c.Rx == 0 {
		return fmt.Errorf("invalid argument: combined %d rx %d", c.Combined, c.Rx)
	}
	r.sets++
	m.Combined, m.Rx, m.Tx = c.Combined, c.Rx, c.Tx
	return nil
}

func (r *recorded) Rings(string) (Rings, error) {
	if r.Rings_ == nil {
		return Rings{}, ErrNotSupported
	}
	return *r.Rings_, nil
}

func (r *recorded) SetRings(_ string, g Rings) error {
	if r.Rings_ == nil {
		return ErrNotSupported
	}
	if g.Rx > r.Rings_.RxMax || g.Tx > r.Rings_.TxMax {
		return fmt.Errorf("invalid argument: rings %d/%d", g.Rx, g.Tx)
	}
	r.sets++
	r.Rings_.Rx, r.Rings_.Tx = g.Rx, g.Tx
	return nil
}

func (r *recorded) RxFlowHash(_ string, flow uint32) (uint64, error) {
	v, ok := r.Rxfh[flowName(flow)]
	if !ok {
		return 0, ErrNotSupported
	}
	return v, nil
}

func (r *recorded) SetRxFlowHash(_ string, flow uint32, fields uint64) error {
	if _, ok := r.Rxfh[flowName(flow)]; !ok {
		return ErrNotSupported
	}
	r.sets++
	r.Rxfh[flowName(flow)] = fields
	return nil
}

func (r *recorded) GRO(string) (bool, error) { return r.Gro, nil }

func (r *recorded) SetGRO(_ string, on bool) error { r.sets++; r.Gro = on; return nil }

func (r *recorded) LRO(string) (bool, error) {
	if r.LroUnsupported {
		return false, ErrNotSupported
	}
	return r.Lro, nil
}

func (r *recorded) SetLRO(_ string, on bool) error {
	if r.LroUnsupported {
		return ErrNotSupported
	}
	r.sets++
	r.Lro = on
	return nil
}

// fixture copies testdata/name to a temporary root (Apply writes to it)
// and returns the Host over it.
func fixture(t *testing.T, name string) (Host, *recorded) {
	t.Helper()
	src := filepath.Join("testdata", name)
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	r := loadRecorded(t, dst)
	return Host{Root: dst, Ethtool: r, Unit: true}, r
}

package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/testlog"
)

// clock is an injectable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testConfig returns a config on a fresh temp dir with a fake clock.
func testConfig(t testing.TB, clk *clock) Config {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Log = testlog.New(t)
	cfg.ChunkSize = 1 << 20
	if clk != nil {
		cfg.Now = clk.Now
	}
	return cfg
}

// openManager opens a manager and closes it at the end of the test.
func openManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	m, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// newManager opens a manager on a temp dir with a fake clock.
func newManager(t testing.TB) (*Manager, *clock) {
	clk := newClock()
	return openManager(t, testConfig(t, clk)), clk
}

// registerNodes registers nodes n1..nN on racks r1..rR (round robin), each
// with 1 GiB capacity, and returns their ids.
func registerNodes(t testing.TB, m *Manager, n, racks int) []string {
	t.Helper()
	var ids []string
	for i := 1; i <= n; i++ {
		id, err := m.Register(context.Background(), RegisterArgs{
			NodeID: fmt.Sprintf("n%d", i), Addr: fmt.Sprintf("127.0.0.1:%d", 9500+i),
			Rack: fmt.Sprintf("r%d", (i-1)%racks+1), Capacity: 1 << 30,
		})
		if err != nil {
			t.Fatalf("Register n%d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// heartbeatAll keeps every node in ids alive and returns the replies.
func heartbeatAll(t testing.TB, m *Manager, ids []string) map[string]HeartbeatReply {
	t.Helper()
	out := make(map[string]HeartbeatReply)
	for _, id := range ids {
		r, err := m.Heartbeat(context.Background(), HeartbeatArgs{NodeID: id, Capacity: 1 << 30})
		if err != nil {
			t.Fatalf("Heartbeat %s: %v", id, err)
		}
		out[id] = r
	}
	return out
}

func mustCreate(t testing.TB, m *Manager, parent Ino, name string, mode uint32) Attr {
	t.Helper()
	r, err := m.Create(context.Background(), parent, name, CreateArgs{Mode: mode, Exclusive: true})
	if err != nil || !r.Created {
		t.Fatalf("Create %q in %d (mode %o): created=%v err=%v", name, parent, mode, r.Created, err)
	}
	return r.Attr
}

func mustAttr(t testing.TB, m *Manager, ino Ino) Attr {
	t.Helper()
	a, err := m.GetAttr(context.Background(), ino)
	if err != nil {
		t.Fatalf("GetAttr %d: %v", ino, err)
	}
	return a
}

// writeChunk allocates chunk index of ino and commits it with length
// bytes on all targets; it returns the allocation.
func writeChunk(t testing.TB, m *Manager, ino Ino, index, length uint64) Allocation {
	t.Helper()
	ctx := context.Background()
	al, err := m.AllocateChunk(ctx, ino, index, nil)
	if err != nil {
		t.Fatalf("AllocateChunk %d/%d: %v", ino, index, err)
	}
	var nodes []string
	for _, l := range al.Targets {
		nodes = append(nodes, l.NodeID)
	}
	_, err = m.CommitChunks(ctx, ino, []ChunkCommit{{
		Index: index, Chunk: al.Chunk, Version: al.Version, Length: length, Summary: 7, Nodes: nodes,
	}}, index*mustAttr(t, m, ino).ChunkSize+length, 0)
	if err != nil {
		t.Fatalf("CommitChunks %d/%d v%d: %v", ino, index, al.Version, err)
	}
	return al
}

// wantErr fails unless errors.Is(err, want) (want nil: err must be nil).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// deletesOf returns the replicas in a heartbeat reply as "chunk@version".
func deletesOf(r HeartbeatReply) []string {
	var out []string
	for _, d := range r.Delete {
		out = append(out, fmt.Sprintf("%d@%d", d.Chunk, d.Version))
	}
	return out
}

package metadata

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRegisterIdentity(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	id, err := m.Register(ctx, RegisterArgs{Addr: "127.0.0.1:1", Rack: "r1", Capacity: 10})
	if err != nil || !strings.HasPrefix(id, "cs-") {
		t.Fatalf("Register without id = %q, %v", id, err)
	}
	id2, err := m.Register(ctx, RegisterArgs{Addr: "127.0.0.1:2", Capacity: 10})
	if err != nil || id2 == id {
		t.Fatalf("second node got %q (%v), first %q", id2, err, id)
	}
	// Known id: address and rack are updated, the id is kept.
	again, err := m.Register(ctx, RegisterArgs{NodeID: id, Addr: "127.0.0.1:3", Rack: "r9", Capacity: 20})
	if err != nil || again != id {
		t.Fatalf("re-register = %q, %v", again, err)
	}
	// An id the manager never saw is accepted as is.
	if got, err := m.Register(ctx, RegisterArgs{NodeID: "cs-old", Addr: "127.0.0.1:4", Capacity: 10}); err != nil || got != "cs-old" {
		t.Fatalf("unknown id = %q, %v", got, err)
	}
	_, err = m.Register(ctx, RegisterArgs{})
	wantErr(t, "register without address", err, ErrInvalid)

	st, err := m.Status(ctx)
	if err != nil || len(st.Nodes) != 3 {
		t.Fatalf("status %+v, %v", st, err)
	}
	for _, n := range st.Nodes {
		if n.ID == id && (n.Addr != "127.0.0.1:3" || n.Rack != "r9" || n.Capacity != 20 || n.State != NodeLive) {
			t.Fatalf("updated node %+v", n)
		}
	}
	fs, _ := m.StatFS(ctx)
	if fs.Capacity != 40 || fs.Free != 40 || fs.NameMax != NameMax || fs.Replication != 3 {
		t.Fatalf("statfs %+v", fs)
	}
}

// TestReconcile registers a node whose report has one replica of each
// kind and checks which ones the heartbeat reply deletes.
func TestReconcile(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 3, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	cur := writeChunk(t, m, f.Ino, 0, 10) // v1
	if _, err := m.AllocateChunk(ctx, f.Ino, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: 0, Chunk: cur.Chunk, Version: 2, Length: 10, Nodes: []string{"n1", "n2"}}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	inflight, err := m.AllocateChunk(ctx, f.Ino, 1, nil) // new chunk, v1, not committed
	if err != nil {
		t.Fatal(err)
	}
	patch, err := m.AllocateChunk(ctx, f.Ino, 0, nil) // v3 of cur, not committed
	if err != nil {
		t.Fatal(err)
	}

	report := []ReplicaReport{
		{Chunk: cur.Chunk, Version: 2},             // current: kept
		{Chunk: cur.Chunk, Version: 1},             // stale
		{Chunk: 99999, Version: 1},                 // orphan
		{Chunk: cur.Chunk, Version: 7},             // newer, no write owns it
		{Chunk: inflight.Chunk, Version: 1},        // being written: kept
		{Chunk: cur.Chunk, Version: patch.Version}, // being written: kept
	}
	if _, err := m.Register(ctx, RegisterArgs{NodeID: "n9", Addr: "127.0.0.1:9", Capacity: 1 << 30, Chunks: report}); err != nil {
		t.Fatal(err)
	}
	reply, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n9", Capacity: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d@1,%d@7,99999@1", cur.Chunk, cur.Chunk)
	if got := strings.Join(deletesOf(reply), ","); got != want {
		t.Fatalf("deletes %s, want %s", got, want)
	}
	_, chunks, _ := m.GetLayout(ctx, f.Ino, 0, 0)
	if got := targetIDs(chunks[0].Replicas); !slices.Equal(got, []string{"n1", "n2", "n9"}) {
		t.Fatalf("holders of v2 %v, want n1, n2 and n9", got)
	}

	// The same kinds arriving in a heartbeat are judged alike.
	reply, err = m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n2", Capacity: 1 << 30, Added: []ReplicaReport{
		{Chunk: 88888, Version: 3}, {Chunk: inflight.Chunk, Version: 1}, {Chunk: cur.Chunk, Version: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// n2 also still has v1 queued from the commit of v2.
	want = fmt.Sprintf("%d@1,88888@3", cur.Chunk)
	if got := strings.Join(deletesOf(reply), ","); got != want {
		t.Fatalf("heartbeat deletes %s, want %s", got, want)
	}

	// A full report replaces what the manager believed.
	if _, err := m.Register(ctx, RegisterArgs{NodeID: "n9", Addr: "127.0.0.1:9", Capacity: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	_, chunks, _ = m.GetLayout(ctx, f.Ino, 0, 0)
	if got := targetIDs(chunks[0].Replicas); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("holders after n9's empty report: %v", got)
	}
}

func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 2, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al := writeChunk(t, m, f.Ino, 0, 10)

	r, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "stranger"})
	if err != nil || !r.Reregister {
		t.Fatalf("unknown node: %+v, %v", r, err)
	}
	_, err = m.Heartbeat(ctx, HeartbeatArgs{})
	wantErr(t, "empty id", err, ErrInvalid)

	// Removed and corrupt replicas leave the map; corrupt ones are deleted.
	r, err = m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n1", Capacity: 1 << 30, Used: 5, Removed: []ReplicaReport{{Chunk: al.Chunk, Version: 1}}})
	if err != nil || r.Reregister || len(r.Delete) != 0 {
		t.Fatalf("heartbeat with removed: %+v, %v", r, err)
	}
	r, err = m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n2", Capacity: 1 << 30, Corrupt: []ReplicaReport{{Chunk: al.Chunk, Version: 1}}})
	if err != nil || strings.Join(deletesOf(r), ",") != fmt.Sprintf("%d@1", al.Chunk) {
		t.Fatalf("heartbeat with corrupt: %+v, %v", r, err)
	}
	_, chunks, _ := m.GetLayout(ctx, f.Ino, 0, 0)
	if len(chunks[0].Replicas) != 0 {
		t.Fatalf("replicas left: %+v", chunks[0].Replicas)
	}
	rep, err := m.Fsck(ctx, 0, 0)
	if err != nil || rep.Corrupt != 1 || rep.Problems[0].State != HealthCorrupt {
		t.Fatalf("fsck after corruption: %+v, %v", rep, err)
	}
	st, _ := m.Status(ctx)
	if st.Nodes[0].Used != 5 || st.Nodes[0].Chunks != 0 {
		t.Fatalf("node after heartbeat: %+v", st.Nodes[0])
	}
}

func TestDeadAfter(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	registerNodes(t, m, 2, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	writeChunk(t, m, f.Ino, 0, 10)

	clk.Advance(m.cfg.DeadAfter) // exactly DeadAfter: still live
	heartbeatAll(t, m, []string{"n1"})
	clk.Advance(time.Millisecond)
	st, _ := m.Status(ctx)
	if st.Nodes[0].State != NodeLive || st.Nodes[1].State != NodeDead || st.UnderReplicated != 1 {
		t.Fatalf("states %s/%s, under %d", st.Nodes[0].State, st.Nodes[1].State, st.UnderReplicated)
	}
	if fs, _ := m.StatFS(ctx); fs.Capacity != 1<<30 {
		t.Fatalf("statfs counts a dead node: %+v", fs)
	}
	_, chunks, _ := m.GetLayout(ctx, f.Ino, 0, 0)
	if got := targetIDs(chunks[0].Replicas); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("layout lists %v, want the live n1", got)
	}
	// A dead node that heartbeats again must send a full report.
	r, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n2", Capacity: 1 << 30})
	if err != nil || !r.Reregister {
		t.Fatalf("dead node heartbeat: %+v, %v", r, err)
	}
	registerNodes(t, m, 2, 1)
	if st, _ := m.Status(ctx); st.Nodes[1].State != NodeLive {
		t.Fatalf("re-registered node is %s", st.Nodes[1].State)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestRunMarksDead(t *testing.T) {
	clk := newClock()
	cfg := testConfig(t, clk)
	cfg.DeadAfter = 200 * time.Millisecond
	m := openManager(t, cfg)
	registerNodes(t, m, 1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	clk.Advance(time.Second)
	waitFor(t, "the background loop to mark n1 dead", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.cl.nodes["n1"].dead && !m.cl.nodes["n1"].registered
	})
}

func TestSafeMode(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	cfg := testConfig(t, clk)
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.SafeMode() {
		t.Fatal("a fresh manager is in safe mode")
	}
	registerNodes(t, m, 2, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al := writeChunk(t, m, f.Ino, 0, 10)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = openManager(t, cfg)
	if !m.SafeMode() {
		t.Fatal("not in safe mode after a restart")
	}
	orphan := ReplicaReport{Chunk: 77777, Version: 1}
	stale := ReplicaReport{Chunk: al.Chunk, Version: 0}
	if _, err := m.Register(ctx, RegisterArgs{NodeID: "n1", Addr: "a:1", Capacity: 1 << 30,
		Chunks: []ReplicaReport{{Chunk: al.Chunk, Version: 1}, orphan, stale}}); err != nil {
		t.Fatal(err)
	}
	r, _ := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n1", Capacity: 1 << 30})
	if len(r.Delete) != 0 || !m.SafeMode() {
		t.Fatalf("deletes in safe mode: %v (safe mode %v)", deletesOf(r), m.SafeMode())
	}
	snap, err := m.Snapshot(ctx)
	if err != nil || !snap.SafeMode || len(snap.Orphans) != 1 || len(snap.Chunks) != 1 || len(snap.Chunks[0].Stale) != 1 {
		t.Fatalf("snapshot in safe mode: %+v, %v", snap, err)
	}
	// The last registered node reports: safe mode ends, and what was
	// reported meanwhile is reconciled.
	if _, err := m.Register(ctx, RegisterArgs{NodeID: "n2", Addr: "a:2", Capacity: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if m.SafeMode() {
		t.Fatal("still in safe mode after every node reported")
	}
	r, _ = m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n1", Capacity: 1 << 30})
	if got := strings.Join(deletesOf(r), ","); got != fmt.Sprintf("%d@0,77777@1", al.Chunk) {
		t.Fatalf("deletes after safe mode: %s", got)
	}
}

func TestSafeModeTimeout(t *testing.T) {
	clk := newClock()
	cfg := testConfig(t, clk)
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	registerNodes(t, m, 3, 1)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, cfg)
	registerNodes(t, m, 1, 1)
	// One node of three is back: too few for a write, but only because
	// the others have not reported yet, so the caller is told to retry.
	f := mustCreate(t, m, RootIno, "f", 0o644)
	_, err = m.AllocateChunk(context.Background(), f.Ino, 0, nil)
	wantErr(t, "allocate in safe mode", err, ErrSafeMode)
	clk.Advance(cfg.DeadAfter - time.Millisecond)
	if !m.SafeMode() {
		t.Fatal("safe mode ended early")
	}
	clk.Advance(time.Millisecond)
	if m.SafeMode() {
		t.Fatal("safe mode did not end DeadAfter after Open")
	}
	// Out of safe mode, too few nodes is a full cluster.
	_, err = m.AllocateChunk(context.Background(), f.Ino, 0, nil)
	wantErr(t, "allocate after safe mode", err, ErrNoChunkServers)
}

func TestPendingExpiry(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	registerNodes(t, m, 2, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The writer sealed the replica on n1 but never committed.
	r, _ := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n1", Capacity: 1 << 30, Added: []ReplicaReport{{Chunk: al.Chunk, Version: 1}}})
	if len(r.Delete) != 0 {
		t.Fatalf("an in-flight replica was deleted: %v", deletesOf(r))
	}
	clk.Advance(pendingTTL)
	if _, err := m.Register(ctx, RegisterArgs{NodeID: "n1", Addr: "a:1", Capacity: 1 << 30,
		Chunks: []ReplicaReport{{Chunk: al.Chunk, Version: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := m.tick(); err != nil {
		t.Fatal(err)
	}
	r, _ = m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n1", Capacity: 1 << 30})
	if got := strings.Join(deletesOf(r), ","); got != fmt.Sprintf("%d@1", al.Chunk) {
		t.Fatalf("deletes after expiry: %q", got)
	}
	_, err = m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: 0, Chunk: al.Chunk, Version: 1, Length: 1}}, 1, 0)
	wantErr(t, "commit after expiry", err, ErrStaleVersion)
}

func TestDecommission(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 4, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al, _ := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: 0, Chunk: al.Chunk, Version: 1, Length: 1,
		Nodes: []string{"n1", "n2", "n3"}}}, 1, 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "unknown node", m.Decommission(ctx, "n7"), ErrNotFound)
	if err := m.Decommission(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	state := func(id string) NodeState {
		st, err := m.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			if n.ID == id {
				return n.State
			}
		}
		t.Fatalf("no node %s", id)
		return ""
	}
	if s := state("n1"); s != NodeDraining {
		t.Fatalf("n1 is %s, want draining while the chunk needs it", s)
	}
	// The healer's copy lands on n4: n1 is no longer needed.
	if _, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n4", Capacity: 1 << 30, Added: []ReplicaReport{{Chunk: al.Chunk, Version: 1}}}); err != nil {
		t.Fatal(err)
	}
	if s := state("n1"); s != NodeDrained {
		t.Fatalf("n1 is %s, want drained", s)
	}
}

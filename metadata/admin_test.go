package metadata

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// commitOn allocates chunk index of ino and commits it as held by nodes.
func commitOn(t *testing.T, m *Manager, ino Ino, index uint64, nodes ...string) ChunkID {
	t.Helper()
	ctx := context.Background()
	al, err := m.AllocateChunk(ctx, ino, index, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CommitChunks(ctx, ino, []ChunkCommit{{Index: index, Chunk: al.Chunk, Version: al.Version, Length: 1, Nodes: nodes}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	return al.Chunk
}

func TestStatusAndFsck(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	registerNodes(t, m, 5, 1)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	sub := mustCreate(t, m, d.Ino, "sub", ModeDir|0o755)
	a := mustCreate(t, m, d.Ino, "a", 0o644)
	b := mustCreate(t, m, sub.Ino, "b", 0o644)
	c := mustCreate(t, m, RootIno, "c", 0o644)
	if _, _, err := m.Link(ctx, b.Ino, RootIno, "b-link"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, m, RootIno, "empty", 0o644)

	commitOn(t, m, a.Ino, 0, "n1", "n2", "n3")               // healthy
	under := commitOn(t, m, a.Ino, 1, "n1", "n2")            // under
	over := commitOn(t, m, b.Ino, 0, "n1", "n2", "n3", "n4") // over
	missing := commitOn(t, m, c.Ino, 0, "n5")                // missing once n5 dies
	commitOn(t, m, c.Ino, 1, "n1", "n2", "n3")               // healthy

	// n5 dies; the others stay.
	clk.Advance(m.cfg.DeadAfter / 2)
	heartbeatAll(t, m, []string{"n1", "n2", "n3", "n4"})
	beat := clk.Now()
	clk.Advance(m.cfg.DeadAfter/2 + 1)

	m.SetHealerStatus(func() HealerStatus { return HealerStatus{Queued: 2, Done: 5} })
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || st.Chunks != 5 || st.UnderReplicated != 1 || st.OverReplicated != 1 || st.Missing != 1 ||
		st.SafeMode || st.Replication != 3 || st.Healer == nil || st.Healer.Done != 5 {
		t.Fatalf("status %+v", st)
	}
	if st.Nodes[4].State != NodeDead || st.Nodes[0].Chunks != 4 || !st.Nodes[0].LastHeartbeat.Equal(beat) {
		t.Fatalf("nodes %+v", st.Nodes)
	}

	r, err := m.Fsck(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 4 || r.Chunks != 5 || r.Healthy != 2 || r.UnderReplicated != 1 || r.OverReplicated != 1 || r.Missing != 1 || r.Corrupt != 0 {
		t.Fatalf("fsck %+v", r)
	}
	var problems []string
	for _, p := range r.Problems {
		problems = append(problems, fmt.Sprintf("%s:%d:%s:%d/%d", p.Path, p.Chunk, p.State, p.Live, p.Wanted))
	}
	want := map[string]bool{
		fmt.Sprintf("/d/a:%d:under_replicated:2/3", under): true,
		fmt.Sprintf("/c:%d:missing:0/3", missing):          true,
	}
	// b has two names; fsck reports it once, under whichever it met first.
	overRow := ""
	for _, p := range problems {
		if strings.Contains(p, fmt.Sprintf(":%d:over_replicated:4/3", over)) {
			overRow = p
			continue
		}
		if !want[p] {
			t.Errorf("unexpected problem %s", p)
		}
		delete(want, p)
	}
	if len(want) != 0 || (overRow != fmt.Sprintf("/d/sub/b:%d:over_replicated:4/3", over) && overRow != fmt.Sprintf("/b-link:%d:over_replicated:4/3", over)) {
		t.Fatalf("problems %v, missing %v", problems, want)
	}

	// A subtree, and the problem limit.
	r, err = m.Fsck(ctx, sub.Ino, 0)
	if err != nil || r.Files != 1 || r.Chunks != 1 || r.OverReplicated != 1 || r.Problems[0].Path != "/d/sub/b" {
		t.Fatalf("fsck of /d/sub: %+v, %v", r, err)
	}
	r, err = m.Fsck(ctx, 0, 1)
	if err != nil || len(r.Problems) != 1 || r.Missing+r.UnderReplicated+r.OverReplicated != 3 {
		t.Fatalf("fsck with limit 1: %+v, %v", r, err)
	}
	r, err = m.Fsck(ctx, a.Ino, 0)
	if err != nil || r.Files != 1 || r.Chunks != 2 || r.Problems[0].Path != fmt.Sprintf("<inode %d>", a.Ino) {
		t.Fatalf("fsck of a file: %+v, %v", r, err)
	}
	_, err = m.Fsck(ctx, 98765, 0)
	wantErr(t, "fsck of a missing inode", err, ErrNotFound)
}

func TestSnapshotAndQueueDelete(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 3, 3)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	c0 := commitOn(t, m, f.Ino, 0, "n1", "n2")
	c1 := commitOn(t, m, f.Ino, 1, "n1", "n2", "n3")
	if _, err := m.AllocateChunk(ctx, f.Ino, 1, nil); err != nil { // c1 v2 being written
		t.Fatal(err)
	}
	// n3 reports a v2 replica of c1 (in flight: neither stale nor orphan).
	if _, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n3", Capacity: 1 << 30, Added: []ReplicaReport{{Chunk: c1, Version: 2}}}); err != nil {
		t.Fatal(err)
	}

	snap, err := m.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.SafeMode || len(snap.Nodes) != 3 || len(snap.Chunks) != 2 || len(snap.Orphans) != 0 {
		t.Fatalf("snapshot %+v", snap)
	}
	s0, s1 := snap.Chunks[0], snap.Chunks[1]
	if s0.Chunk != c0 || s0.Ino != f.Ino || s0.Index != 0 || s0.Wanted != 3 || strings.Join(s0.Holders, ",") != "n1,n2" || s0.Writing {
		t.Fatalf("chunk 0 %+v", s0)
	}
	if s1.Chunk != c1 || s1.Version != 1 || !s1.Writing || len(s1.Holders) != 3 || len(s1.Stale) != 0 {
		t.Fatalf("chunk 1 %+v", s1)
	}
	if snap.Nodes[0].ID != "n1" || snap.Nodes[0].Rack != "r1" || snap.Nodes[0].State != NodeLive || snap.Nodes[0].Capacity != 1<<30 {
		t.Fatalf("node %+v", snap.Nodes[0])
	}

	// The healer removes an extra replica: it stops counting at once, and
	// the next heartbeat of its node carries the delete.
	if err := m.QueueDelete("n2", c1, 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "queue on an unknown node", m.QueueDelete("zz", c1, 1), ErrNotFound)
	snap, _ = m.Snapshot(ctx)
	if got := strings.Join(snap.Chunks[1].Holders, ","); got != "n1,n3" {
		t.Fatalf("holders after QueueDelete: %s", got)
	}
	r, _ := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n2", Capacity: 1 << 30})
	if got := strings.Join(deletesOf(r), ","); got != fmt.Sprintf("%d@1", c1) {
		t.Fatalf("n2 deletes %q", got)
	}
}

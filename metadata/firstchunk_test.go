package metadata

import (
	"context"
	"fmt"
	"strings"
	"testing"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// Create with Allocate hands out chunk 0 for a regular file it makes, and
// nothing otherwise; the allocation commits like AllocateChunk's.
func TestCreateAllocatesFirstChunk(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 4, 2)
	create := func(name string, args CreateArgs) CreateResult {
		t.Helper()
		r, err := m.Create(ctx, RootIno, name, args)
		if err != nil {
			t.Fatalf("create %q: %v", name, err)
		}
		return r
	}

	r := create("f", CreateArgs{Mode: 0o644, Allocate: true})
	al := r.First
	if !r.Created || al == nil {
		t.Fatalf("create of a new file with Allocate: created=%v first=%+v", r.Created, al)
	}
	if al.Chunk == 0 || al.Version != 1 || al.BaseVersion != 0 || al.MinReplicas != 2 || len(al.Targets) != 3 {
		t.Fatalf("first chunk %+v: want a new chunk at version 1 on 3 targets", al)
	}
	for name, args := range map[string]CreateArgs{
		"g":   {Mode: 0o644},                           // not asked
		"f":   {Mode: 0o644, Allocate: true},           // exists: not made by this call
		"d":   {Mode: ModeDir | 0o755, Allocate: true}, // not a regular file
		"l":   {Mode: ModeSymlink, Target: "f", Allocate: true},
		"nod": {Mode: modeFIFO | 0o644, Allocate: true},
	} {
		if r := create(name, args); r.First != nil {
			t.Errorf("create %q (mode %o, created %v) handed out %+v", name, args.Mode, r.Created, r.First)
		}
	}

	a, err := m.CommitChunks(ctx, r.Attr.Ino, []ChunkCommit{{Index: 0, Chunk: al.Chunk, Version: 1, Length: 10,
		Nodes: targetIDs(al.Targets)}}, 10, 0)
	if err != nil || a.Size != 10 {
		t.Fatalf("commit of the first chunk: %+v, %v", a, err)
	}
	_, chunks, err := m.GetLayout(ctx, r.Attr.Ino, 0, 0)
	if err != nil || len(chunks) != 1 || chunks[0].Chunk != al.Chunk || len(chunks[0].Replicas) != 3 {
		t.Fatalf("layout after the commit: %+v, %v", chunks, err)
	}
	// The next write of chunk 0 builds on what was committed.
	next, err := m.AllocateChunk(ctx, r.Attr.Ino, 0, nil)
	if err != nil || next.Chunk != al.Chunk || next.BaseVersion != 1 || next.Version != 2 {
		t.Fatalf("allocation after the first chunk's commit: %+v, %v", next, err)
	}
}

// The allocation travels in CreateResponse.first_chunk when asked for.
func TestServiceCreateFirstChunk(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 3, 1)
	c := serve(t, m)
	resp, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: uint64(RootIno), Name: "f", Mode: 0o644, Allocate: true})
	if err != nil {
		t.Fatal(err)
	}
	fc := resp.GetFirstChunk()
	if fc == nil || fc.GetChunkId() == 0 || fc.GetVersion() != 1 || len(fc.GetTargets()) != 3 || fc.GetMinReplicas() != 2 {
		t.Fatalf("first_chunk %v", fc)
	}
	resp, err = c.Create(ctx, &shoalpb.CreateRequest{Parent: uint64(RootIno), Name: "g", Mode: 0o644})
	if err != nil || resp.GetFirstChunk() != nil {
		t.Fatalf("create without allocate: first_chunk %v, %v", resp.GetFirstChunk(), err)
	}
}

// An allocation handed out with a create and never used leaves nothing
// behind: its pending entry expires, the targets' placement estimates
// reset at their next report, no chunk record is written, and a replica
// written on it and never committed is deleted.
func TestCreateFirstChunkUnused(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	nodes := registerNodes(t, m, 3, 1)
	r, err := m.Create(ctx, RootIno, "f", CreateArgs{Mode: 0o644, Allocate: true})
	if err != nil || r.First == nil {
		t.Fatalf("create: %+v, %v", r, err)
	}
	al := *r.First
	pending := func() (entries int, placed uint64) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, n := range m.cl.nodes {
			placed += n.placed
		}
		return len(m.cl.pending), placed
	}
	if n, placed := pending(); n != 1 || placed != 3*r.Attr.ChunkSize {
		t.Fatalf("after the create: %d pending, %d bytes placed; want 1 and 3 chunks", n, placed)
	}
	heartbeatAll(t, m, nodes)
	if _, placed := pending(); placed != 0 {
		t.Fatalf("%d bytes still placed after every target reported", placed)
	}

	// A writer sealed a replica on n1 and died before its commit.
	replica := []ReplicaReport{{Chunk: al.Chunk, Version: al.Version}}
	if _, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n1", Capacity: 1 << 30, Added: replica}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(pendingTTL)
	if _, err := m.Register(ctx, RegisterArgs{NodeID: "n1", Addr: "a:1", Capacity: 1 << 30, Chunks: replica}); err != nil {
		t.Fatal(err)
	}
	if err := m.tick(); err != nil {
		t.Fatal(err)
	}
	if n, _ := pending(); n != 0 {
		t.Fatalf("%d allocations pending past pendingTTL", n)
	}
	replies := heartbeatAll(t, m, []string{"n1"})
	if got, want := strings.Join(deletesOf(replies["n1"]), ","), fmt.Sprintf("%d@%d", al.Chunk, al.Version); got != want {
		t.Fatalf("n1 told to delete %q, want %q", got, want)
	}
	_, err = m.CommitChunks(ctx, r.Attr.Ino, []ChunkCommit{{Index: 0, Chunk: al.Chunk, Version: al.Version, Length: 1}}, 1, 0)
	wantErr(t, "commit after expiry", err, ErrStaleVersion)

	st, err := m.Status(ctx)
	if err != nil || st.Chunks != 0 || st.Files != 1 {
		t.Fatalf("status: %+v, %v; want 1 file and no chunk", st, err)
	}
	snap, err := m.Snapshot(ctx)
	if err != nil || len(snap.Chunks) != 0 || len(snap.Orphans) != 0 {
		t.Fatalf("snapshot: %+v, %v; want no chunk and no orphan", snap, err)
	}
	if a := mustAttr(t, m, r.Attr.Ino); a.Size != 0 {
		t.Fatalf("size %d", a.Size)
	}
}

// Safe mode, or too few chunkservers, does not fail a create that asks
// for an allocation: it comes without one.
func TestCreateFirstChunkWithoutNodes(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, newClock())
	m := openManager(t, cfg)
	r, err := m.Create(ctx, RootIno, "none", CreateArgs{Mode: 0o644, Allocate: true})
	if err != nil || !r.Created || r.First != nil {
		t.Fatalf("create with no chunkserver: %+v, %v", r, err)
	}
	registerNodes(t, m, 3, 1)
	if err := m.Close(); err != nil { // and again at cleanup, harmlessly
		t.Fatal(err)
	}

	m = openManager(t, cfg)
	registerNodes(t, m, 1, 1) // one of three back: safe mode goes on
	if !m.SafeMode() {
		t.Fatal("not in safe mode")
	}
	r, err = m.Create(ctx, RootIno, "safe", CreateArgs{Mode: 0o644, Allocate: true})
	if err != nil || !r.Created || r.First != nil {
		t.Fatalf("create in safe mode: %+v, %v", r, err)
	}
	m.mu.Lock()
	n := len(m.cl.pending)
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d allocations pending after creates that made none", n)
	}
}

package metadata

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
)

func targetIDs(locs []Location) []string {
	var out []string
	for _, l := range locs {
		out = append(out, l.NodeID)
	}
	sort.Strings(out)
	return out
}

func TestAllocateCommit(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	nodes := registerNodes(t, m, 4, 2)
	f := mustCreate(t, m, RootIno, "f", 0o644)

	al, err := m.AllocateChunk(ctx, f.Ino, 0, []string{"n1"})
	if err != nil {
		t.Fatal(err)
	}
	if al.Version != 1 || al.BaseVersion != 0 || al.MinReplicas != 2 || len(al.Targets) != 3 {
		t.Fatalf("new allocation %+v", al)
	}
	if got := strings.Join(targetIDs(al.Targets), ","); got != "n2,n3,n4" {
		t.Fatalf("targets %s, want n2,n3,n4 (n1 excluded)", got)
	}
	a, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: 0, Chunk: al.Chunk, Version: 1, Length: 500, Summary: 42,
		Nodes: []string{"n2", "n3"}}}, 500, 77)
	if err != nil || a.Size != 500 || a.Mtime != 77 {
		t.Fatalf("commit = %+v, %v", a, err)
	}
	_, chunks, err := m.GetLayout(ctx, f.Ino, 0, 0)
	if err != nil || len(chunks) != 1 {
		t.Fatalf("layout %+v, %v", chunks, err)
	}
	c := chunks[0]
	if c.Chunk != al.Chunk || c.Version != 1 || c.Length != 500 || c.Summary != 42 || strings.Join(targetIDs(c.Replicas), ",") != "n2,n3" {
		t.Fatalf("layout chunk %+v", c)
	}
	// n4 was a target but did not ack; when it reports v1 it is a holder too.
	if _, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n4", Capacity: 1 << 30, Added: []ReplicaReport{{Chunk: al.Chunk, Version: 1}}}); err != nil {
		t.Fatal(err)
	}

	// Overwrite: same id, next version, built on v1 by its holders.
	al2, err := m.AllocateChunk(ctx, f.Ino, 0, []string{"n3"})
	if err != nil {
		t.Fatal(err)
	}
	if al2.Chunk != al.Chunk || al2.Version != 2 || al2.BaseVersion != 1 || al2.BaseLength != 500 {
		t.Fatalf("overwrite allocation %+v", al2)
	}
	if got := strings.Join(targetIDs(al2.Targets), ","); got != "n2,n4" {
		t.Fatalf("overwrite targets %s, want the holders of v1 but n3", got)
	}
	// Commit v2 on n2 only: v1 replicas everywhere become stale.
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: 0, Chunk: al.Chunk, Version: 2, Length: 600, Nodes: []string{"n2"}}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	replies := heartbeatAll(t, m, nodes)
	for id, want := range map[string]string{"n1": "", "n2": fmt.Sprintf("%d@1", al.Chunk), "n3": fmt.Sprintf("%d@1", al.Chunk), "n4": fmt.Sprintf("%d@1", al.Chunk)} {
		if got := strings.Join(deletesOf(replies[id]), ","); got != want {
			t.Errorf("%s deletes %q, want %q", id, got, want)
		}
	}
	if a := mustAttr(t, m, f.Ino); a.Size != 500 {
		t.Fatalf("size %d: a commit with a smaller min_size must not shrink the file", a.Size)
	}
	_, chunks, _ = m.GetLayout(ctx, f.Ino, 0, 0)
	if chunks[0].Version != 2 || chunks[0].Length != 600 || strings.Join(targetIDs(chunks[0].Replicas), ",") != "n2" {
		t.Fatalf("layout after v2: %+v", chunks[0])
	}
}

func TestCommitStaleVersion(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 3, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	base := writeChunk(t, m, f.Ino, 0, 100)
	commit := func(c ChunkCommit) error {
		_, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{c}, 0, 0)
		return err
	}

	// Two writers of the same chunk get distinct versions; the second to
	// commit loses.
	a1, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Version != 2 || a2.Version != 3 || a2.BaseVersion != 1 {
		t.Fatalf("concurrent allocations %+v and %+v", a1, a2)
	}
	wantErr(t, "first commit", commit(ChunkCommit{Index: 0, Chunk: base.Chunk, Version: 2, Length: 100}), nil)
	wantErr(t, "second commit", commit(ChunkCommit{Index: 0, Chunk: base.Chunk, Version: 3, Length: 100}), ErrStaleVersion)
	// Repeating the successful commit is harmless.
	wantErr(t, "repeated commit", commit(ChunkCommit{Index: 0, Chunk: base.Chunk, Version: 2, Length: 100}), nil)
	// A version never allocated is refused.
	wantErr(t, "unallocated version", commit(ChunkCommit{Index: 0, Chunk: base.Chunk, Version: 9, Length: 100}), ErrStaleVersion)

	// Two writers of a new chunk at the same index: different ids, the
	// second commit loses.
	n1, _ := m.AllocateChunk(ctx, f.Ino, 1, nil)
	n2, _ := m.AllocateChunk(ctx, f.Ino, 1, nil)
	if n1.Chunk == n2.Chunk || n1.Version != 1 || n2.Version != 1 {
		t.Fatalf("new-chunk allocations %+v and %+v", n1, n2)
	}
	wantErr(t, "first new", commit(ChunkCommit{Index: 1, Chunk: n1.Chunk, Version: 1, Length: 5}), nil)
	wantErr(t, "second new", commit(ChunkCommit{Index: 1, Chunk: n2.Chunk, Version: 1, Length: 5}), ErrStaleVersion)

	// A failed commit changes nothing, even when other chunks in it are fine.
	n3, _ := m.AllocateChunk(ctx, f.Ino, 2, nil)
	_, err = m.CommitChunks(ctx, f.Ino, []ChunkCommit{
		{Index: 2, Chunk: n3.Chunk, Version: 1, Length: 5},
		{Index: 1, Chunk: n2.Chunk, Version: 1, Length: 5},
	}, 1<<30, 0)
	wantErr(t, "mixed commit", err, ErrStaleVersion)
	if _, chunks, _ := m.GetLayout(ctx, f.Ino, 2, 1); len(chunks) != 0 {
		t.Fatalf("a failed commit left %+v", chunks)
	}

	// Validation.
	wantErr(t, "too long", commit(ChunkCommit{Index: 2, Chunk: n3.Chunk, Version: 1, Length: 2 << 20}), ErrInvalid)
	wantErr(t, "zero id", commit(ChunkCommit{Index: 2, Version: 1}), ErrInvalid)
	_, err = m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: 2, Chunk: n3.Chunk, Version: 1}, {Index: 2, Chunk: n3.Chunk, Version: 1}}, 0, 0)
	wantErr(t, "repeated index", err, ErrInvalid)
	_, err = m.CommitChunks(ctx, d.Ino, []ChunkCommit{{Index: 0, Chunk: n3.Chunk, Version: 1}}, 0, 0)
	wantErr(t, "commit to a directory", err, ErrIsDir)
	_, err = m.CommitChunks(ctx, 4444, []ChunkCommit{{Index: 0, Chunk: n3.Chunk, Version: 1}}, 0, 0)
	wantErr(t, "commit to a missing file", err, ErrNotFound)
	_, err = m.AllocateChunk(ctx, d.Ino, 0, nil)
	wantErr(t, "allocate in a directory", err, ErrIsDir)
	_, err = m.AllocateChunk(ctx, f.Ino, MaxFileSize, nil)
	wantErr(t, "allocate past the size limit", err, ErrInvalid)
}

func TestAllocateNoSpace(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	_, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	wantErr(t, "no nodes", err, ErrNoChunkServers)

	nodes := registerNodes(t, m, 3, 1)
	_, err = m.AllocateChunk(ctx, f.Ino, 0, []string{"n1", "n2"})
	wantErr(t, "all but one excluded", err, ErrNoChunkServers)
	if err := m.Decommission(ctx, "127.0.0.1:9502"); err != nil { // n2, by address
		t.Fatal(err)
	}
	al, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil || strings.Join(targetIDs(al.Targets), ",") != "n1,n3" {
		t.Fatalf("allocation with n2 draining = %+v, %v", al, err)
	}
	// A full node is not chosen.
	if _, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: "n3", Capacity: 100, Used: 100}); err != nil {
		t.Fatal(err)
	}
	_, err = m.AllocateChunk(ctx, f.Ino, 0, nil)
	wantErr(t, "one live node with room", err, ErrNoChunkServers)

	// Dead nodes are not chosen, and their replicas cannot be patched.
	heartbeatAll(t, m, nodes)
	writeChunk(t, m, f.Ino, 0, 10)
	clk.Advance(m.cfg.DeadAfter + 1)
	heartbeatAll(t, m, []string{"n2"}) // reregister asked; n2 stays dead too
	_, err = m.AllocateChunk(ctx, f.Ino, 0, nil)
	wantErr(t, "patch without live holders", err, ErrNoChunkServers)
	_, err = m.AllocateChunk(ctx, f.Ino, 1, nil)
	wantErr(t, "new chunk without live nodes", err, ErrNoChunkServers)
}

func TestGetLayoutReplicaOrder(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	registerNodes(t, m, 4, 4)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: 0, Chunk: al.Chunk, Version: 1, Length: 1,
		Nodes: []string{"n1", "n2", "n3", "n4"}}}, 1, 0); err != nil {
		t.Fatal(err)
	}
	clk.Advance(m.cfg.DeadAfter / 2)
	for id, used := range map[string]uint64{"n1": 900, "n2": 100, "n3": 500} { // n4 goes silent
		if _, err := m.Heartbeat(ctx, HeartbeatArgs{NodeID: id, Capacity: 1000, Used: used}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Decommission(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(m.cfg.DeadAfter/2 + 1)
	_, chunks, err := m.GetLayout(ctx, f.Ino, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range chunks[0].Replicas {
		got = append(got, r.NodeID)
	}
	if strings.Join(got, ",") != "n3,n1,n2" {
		t.Fatalf("replica order %v, want n3,n1 (least full first), then draining n2; dead n4 left out", got)
	}
}

func TestGetLayoutRange(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 2, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	for _, i := range []uint64{0, 1, 2, 5} {
		writeChunk(t, m, f.Ino, i, 1<<20)
	}
	for _, tc := range []struct {
		first, count uint64
		want         string
	}{{0, 0, "0,1,2,5"}, {1, 2, "1,2"}, {2, 0, "2,5"}, {3, 3, "5"}, {6, 0, ""}} {
		_, chunks, err := m.GetLayout(ctx, f.Ino, tc.first, tc.count)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range chunks {
			got = append(got, fmt.Sprint(c.Index))
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("GetLayout(%d, %d) = %v, want %s", tc.first, tc.count, got, tc.want)
		}
	}
}

func TestReportBadReplica(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	nodes := registerNodes(t, m, 2, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al := writeChunk(t, m, f.Ino, 0, 10)
	if err := m.ReportBadReplica(ctx, al.Chunk, 1, "n1", "checksum mismatch"); err != nil {
		t.Fatal(err)
	}
	_, chunks, _ := m.GetLayout(ctx, f.Ino, 0, 0)
	if got := strings.Join(targetIDs(chunks[0].Replicas), ","); got != "n2" {
		t.Fatalf("replicas after a bad report: %s", got)
	}
	// The last live replica is kept.
	if err := m.ReportBadReplica(ctx, al.Chunk, 1, "n2", "timeout"); err != nil {
		t.Fatal(err)
	}
	_, chunks, _ = m.GetLayout(ctx, f.Ino, 0, 0)
	if len(chunks[0].Replicas) != 1 {
		t.Fatalf("the last replica was dropped: %+v", chunks[0])
	}
	replies := heartbeatAll(t, m, nodes)
	if got := strings.Join(deletesOf(replies["n1"]), ","); got != fmt.Sprintf("%d@1", al.Chunk) || len(replies["n2"].Delete) != 0 {
		t.Fatalf("deletes n1=%v n2=%v", deletesOf(replies["n1"]), deletesOf(replies["n2"]))
	}
	if err := m.ReportBadReplica(ctx, al.Chunk, 1, "nobody", "x"); err != nil {
		t.Fatalf("report on an unknown node: %v", err)
	}
}

// Allocations between two heartbeats spread over the nodes: each counts
// against its targets until they report their real usage.
func TestAllocationsSpreadBetweenHeartbeats(t *testing.T) {
	m, _ := newManager(t)
	registerNodes(t, m, 4, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	count := map[string]int{}
	for i := range uint64(4) {
		al, err := m.AllocateChunk(context.Background(), f.Ino, i, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range al.Targets {
			count[tg.NodeID]++
		}
	}
	for id, n := range count {
		if n != 3 {
			t.Errorf("node %s chosen %d times for 4 chunks x 3 replicas over 4 nodes, want 3 each: %v", id, n, count)
		}
	}
}

// Estimates of recent allocations never make the cluster look full: far
// more chunks than fit at the full chunk size can be allocated between
// two heartbeats when the files are small (an untar).
func TestManySmallAllocationsBetweenHeartbeats(t *testing.T) {
	m, _ := newManager(t)
	registerNodes(t, m, 3, 1) // 1 GiB each; chunk size 1 MiB
	f := mustCreate(t, m, RootIno, "f", 0o644)
	for i := range uint64(3000) { // 3000 x 1 MiB x 3 replicas > 3 GiB
		if _, err := m.AllocateChunk(context.Background(), f.Ino, i, nil); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
}

// A commit can carry the attribute changes made with the data: they land
// in the same transaction, an explicit mtime winning over the commit's.
func TestCommitChunksAndSetAttr(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 3, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := SetAttrArgs{Mask: SetMode | SetUID | SetGID | SetMtime, Mode: 0o600, UID: 7, GID: 8, Mtime: 1234}
	c := ChunkCommit{Index: 0, Chunk: al.Chunk, Version: al.Version, Length: 10}
	a, err := m.CommitChunksAndSetAttr(ctx, f.Ino, []ChunkCommit{c}, 10, 99, set)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.GetAttr(ctx, f.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if got != a || a.Mode != ModeRegular|0o600 || a.UID != 7 || a.GID != 8 || a.Mtime != 1234 || a.Size != 10 {
		t.Fatalf("after the commit: %+v (reply %+v)", got, a)
	}
	_, err = m.CommitChunksAndSetAttr(ctx, f.Ino, nil, 0, 0, SetAttrArgs{Mask: SetSize, Size: 1})
	wantErr(t, "a size change in a commit", err, ErrInvalid)
}

// A small file's chunk 0 can be kept in the manager's records: it comes
// back with the layout, a truncate cuts it, a chunk committed at index 0
// replaces it, and removing the file removes it. An inline commit never
// replaces a chunk.
func TestInlineChunk(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	registerNodes(t, m, 3, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	hasInline := func(ino Ino) bool {
		t.Helper()
		var ok bool
		if err := m.st.view(func(t tx) (err error) { ok, err = t.has(inlineKey(ino)); return err }); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	layout := func() []ChunkLayout {
		t.Helper()
		_, ls, err := m.GetLayout(ctx, f.Ino, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}

	// The create's allocation of chunk 0, released by the inline commit.
	unused, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello, inline world")
	a, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Length: uint64(len(data)), Inline: data}}, uint64(len(data)), 5)
	if err != nil || a.Size != uint64(len(data)) || a.Mtime != 5 {
		t.Fatalf("inline commit = %+v, %v", a, err)
	}
	m.ReleaseAllocation(unused.Chunk, unused.Version)
	m.mu.Lock()
	left := len(m.cl.pending[unused.Chunk])
	m.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d pending allocations of chunk %d after its release", left, unused.Chunk)
	}
	if ls := layout(); len(ls) != 1 || ls[0].Chunk != 0 || ls[0].Index != 0 || string(ls[0].Inline) != string(data) || ls[0].Length != uint64(len(data)) {
		t.Fatalf("layout %+v", ls)
	}

	// Bad inline commits: too long, not at index 0, length not its own.
	for name, c := range map[string]ChunkCommit{
		"over MaxInline": {Length: MaxInline + 1, Inline: make([]byte, MaxInline+1)},
		"at index 1":     {Index: 1, Length: 3, Inline: []byte("abc")},
		"wrong length":   {Length: 4, Inline: []byte("abc")},
		"with a chunk":   {Chunk: 9, Version: 1, Length: 3, Inline: []byte("abc")},
	} {
		_, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{c}, 0, 0)
		wantErr(t, name, err, ErrInvalid)
	}

	// A commit built on other bytes than the file's is stale; built on
	// them, it goes through.
	_, err = m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Length: 3, Inline: []byte("abc")}}, 3, 0)
	wantErr(t, "an inline commit built on nothing", err, ErrStaleVersion)
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Length: uint64(len(data)), Inline: data, InlineBase: inlineCRC(data)}}, 0, 0); err != nil {
		t.Fatal(err)
	}

	// Truncate: down cuts the bytes, up leaves them (zeros after).
	if _, err := m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: 5}); err != nil {
		t.Fatal(err)
	}
	if ls := layout(); len(ls) != 1 || string(ls[0].Inline) != "hello" {
		t.Fatalf("after truncate to 5: %+v", ls)
	}
	if a, err := m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: 1 << 20}); err != nil || a.Size != 1<<20 {
		t.Fatalf("truncate up: %+v, %v", a, err)
	}
	if ls := layout(); len(ls) != 1 || string(ls[0].Inline) != "hello" {
		t.Fatalf("after truncate up: %+v", ls)
	}

	// A chunk at index 0 replaces the inline bytes...
	al, err := m.AllocateChunk(ctx, f.Ino, 0, nil)
	if err != nil || al.BaseVersion != 0 {
		t.Fatalf("allocation %+v, %v: want a new chunk", al, err)
	}
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Chunk: al.Chunk, Version: al.Version, Length: 100, Nodes: []string{"n1"}}}, 100, 0); err != nil {
		t.Fatal(err)
	}
	if ls := layout(); len(ls) != 1 || ls[0].Chunk != al.Chunk || ls[0].Inline != nil || hasInline(f.Ino) {
		t.Fatalf("after a chunk commit at index 0: %+v", ls)
	}
	// ...and an inline commit does not replace a chunk.
	_, err = m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Length: 3, Inline: []byte("abc")}}, 3, 0)
	wantErr(t, "an inline commit over a chunk", err, ErrStaleVersion)

	// Truncate to 0, inline again, then unlink: nothing is left.
	if _, err := m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Length: 3, Inline: []byte("abc")}}, 3, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: 0}); err != nil || hasInline(f.Ino) {
		t.Fatalf("truncate to 0 left inline bytes (%v)", err)
	}
	if _, err := m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Length: 3, Inline: []byte("xyz")}}, 3, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unlink(ctx, RootIno, "f", false, false); err != nil {
		t.Fatal(err)
	}
	if hasInline(f.Ino) {
		t.Fatal("inline bytes outlived their file")
	}
}

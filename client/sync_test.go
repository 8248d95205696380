package client

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// Close (Flush) seals and commits without fsyncing the replicas; Sync
// fsyncs every chunk on its replicas and the manager's log. The first
// Sync of a File covers what earlier opens wrote and closed; a later one
// only what this File committed since.
func TestFlushAndSync(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 3, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(ctx, randBytes(1, 2*mib+5), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	chunks := fc.layout(a.Ino)
	if len(chunks) != 3 {
		t.Fatalf("layout has %d chunks, want 3", len(chunks))
	}
	synced := func() (replicas, total int) {
		for _, l := range chunks {
			for _, n := range fc.nodes {
				if k := n.syncCount(l.ChunkId, l.Version); k > 0 {
					replicas++
					total += k
				}
			}
		}
		return replicas, total
	}
	if r, _ := synced(); r != 0 || fc.mgr.syncs != 0 {
		t.Fatalf("after close: %d replicas and %d manager syncs, want none", r, fc.mgr.syncs)
	}

	// A new open's first Sync covers the chunks the closed File wrote.
	f, err = c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := synced(); r != 9 || fc.mgr.syncs != 1 {
		t.Fatalf("after the first Sync: %d of 9 replicas synced, %d manager syncs (want 1)", r, fc.mgr.syncs)
	}
	// With nothing written since, the next one fsyncs no replica again.
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, total := synced(); total != 9 {
		t.Fatalf("a Sync with nothing new synced replicas again: %d syncs in all, want 9", total)
	}

	// Too few replicas on disk: fsync fails, and says why.
	if _, err := f.WriteAt(ctx, []byte("more"), 10); err != nil {
		t.Fatal(err)
	}
	for _, n := range fc.nodes[:2] {
		n.mu.Lock()
		n.failSync = true
		n.mu.Unlock()
	}
	err = f.Sync(ctx)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync with two of three replicas failing their fsync: %v, want EIO", err)
	}
	for _, n := range fc.nodes[:2] {
		n.mu.Lock()
		n.failSync = false
		n.mu.Unlock()
	}
	if err := f.Sync(ctx); err != nil {
		t.Fatalf("Sync once the replicas recover: %v", err)
	}
}

// Attribute changes on a file with unflushed writes wait for its flush
// and go with its data, in its commit; on a clean file DeferAttr declines.
// A write after a deferred mtime drops it (the write sets the time).
func TestDeferAttr(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	mode, uid := uint32(0o600), uint32(1234)
	if f.DeferAttr(SetAttr{Mode: &mode}) {
		t.Fatal("DeferAttr on a file with nothing to flush deferred")
	}
	if _, err := f.WriteAt(ctx, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1_000_000, 0)
	for _, s := range []SetAttr{{Mode: &mode}, {UID: &uid}, {Mtime: &mtime}} {
		if !f.DeferAttr(s) {
			t.Fatalf("DeferAttr(%+v) on a written file declined", s)
		}
	}
	if got := f.Attr(); got.Mode&0o777 != mode || got.UID != uid || !got.Mtime.Equal(mtime) || got.Size != 4 {
		t.Fatalf("Attr with changes pending: mode %o uid %d mtime %v size %d", got.Mode, got.UID, got.Mtime, got.Size)
	}
	fc.mgr.mu.Lock()
	calls := fc.mgr.setattrs
	fc.mgr.mu.Unlock()
	if calls != 0 {
		t.Fatalf("%d SetAttr calls before the flush, want 0", calls)
	}
	if _, ok := f.LocalAttr(); !ok {
		t.Fatal("LocalAttr declines with a write and changes pending")
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.LocalAttr(); ok {
		t.Fatal("LocalAttr answers after Flush: the manager is as far")
	}
	got, err := c.GetAttr(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	fc.mgr.mu.Lock()
	calls = fc.mgr.setattrs
	fc.mgr.mu.Unlock()
	if calls != 0 || got.Mode&0o777 != mode || got.UID != uid || !got.Mtime.Equal(mtime) || got.Size != 4 {
		t.Fatalf("after the flush: %d SetAttr calls (want none: the commit carries them), attr %+v", calls, got)
	}

	// A write after a deferred mtime: the commit's time stands.
	if _, err := f.WriteAt(ctx, []byte("more"), 4); err != nil {
		t.Fatal(err)
	}
	if !f.DeferAttr(SetAttr{Mtime: &mtime}) {
		t.Fatal("DeferAttr declined")
	}
	if _, err := f.WriteAt(ctx, []byte("again"), 8); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetAttr(ctx, a.Ino); err != nil || got.Mtime.Equal(mtime) {
		t.Fatalf("mtime after utimens then write: %v (%v), want the write's time", got.Mtime, err)
	}
}

// A change deferred while a commit was in flight is still pending when
// that commit lands; a change that comes after it waits with it, so that
// this client's view (LocalAttr) shows both, and the next Flush sets both.
// (Set at once, the later change reached the manager but not the view:
// fstat on a mount showed the new owner and the old mode.)
func TestDeferAttrJoinsPending(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	f := openNew(t, c, "f")
	if _, err := f.WriteAt(ctx, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	fc.mgr.beforeCommit = func() { close(started); <-release }
	f.mu.Lock()
	for _, g := range f.open {
		f.sealLocked(g) // its commit starts, carrying the changes pending now: none
	}
	wait := append([]*gen(nil), f.queue...)
	f.mu.Unlock()
	<-started
	mode, uid := uint32(0o600), uint32(1234)
	if !f.DeferAttr(SetAttr{UID: &uid}) {
		t.Fatal("DeferAttr with a commit in flight declined")
	}
	close(release)
	for _, g := range wait {
		<-g.done
	}
	if !f.DeferAttr(SetAttr{Mode: &mode}) {
		t.Fatal("DeferAttr declined while an earlier change was still pending")
	}
	got, ok := f.LocalAttr()
	if !ok || got.Mode&0o777 != mode || got.UID != uid {
		t.Fatalf("LocalAttr: mode %o uid %d (answered %v), want mode %o uid %d", got.Mode, got.UID, ok, mode, uid)
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetAttr(ctx, f.Ino()); err != nil || got.Mode&0o777 != mode || got.UID != uid {
		t.Fatalf("the manager after Flush: mode %o uid %d (%v)", got.Mode, got.UID, err)
	}
}

// A small write sealed before its allocation came back goes to every
// replica side by side, each a chain of one: a node that fails costs only
// its own replica, and is left out of the next attempt when too few
// sealed.
func TestSmallChunkFansOut(t *testing.T) {
	ctx := context.Background()
	data := randBytes(9, 4096)
	put := func(t *testing.T, fc *fakeCluster, name string) *shoalpb.ChunkLayout {
		t.Helper()
		c := fc.client(t, nil)
		a := createFile(t, c, name)
		f, err := c.Open(ctx, a.Ino)
		if err != nil {
			t.Fatal(err)
		}
		// Not an append (it leaves a hole of 100 bytes): the generation
		// starts at Close, sealed, so the fan-out does not hang on timing.
		if _, err := f.WriteAt(ctx, data, 100); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, c, a.Ino, 4096); !bytes.Equal(got[100:], data) {
			t.Fatal("the small file reads back different")
		}
		for _, n := range fc.nodes {
			for _, w := range n.writeLog() {
				if len(w.hdr.GetChain()) != 0 {
					t.Errorf("node %s got a small chunk with a chain of %d after it, want a fan-out", n.id, len(w.hdr.GetChain()))
				}
			}
		}
		return fc.layout(a.Ino)[0]
	}

	t.Run("one node fails", func(t *testing.T) {
		fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 3, minReplicas: 2, chunkSize: mib})
		fc.nodes[0].mu.Lock()
		fc.nodes[0].failAfter, fc.nodes[0].failWrites = 1, 1
		fc.nodes[0].mu.Unlock()
		if l := put(t, fc, "small"); len(l.GetReplicas()) != 2 {
			t.Fatalf("replicas %v, want the 2 that did not fail (no second attempt needed)", l.GetReplicas())
		}
	})
	t.Run("too few seal", func(t *testing.T) {
		fc := newFakeCluster(t, fakeOptions{nodes: 4, replication: 3, minReplicas: 3, chunkSize: mib})
		bad := fc.nodes[0]
		bad.mu.Lock()
		bad.failAfter, bad.failWrites = 1, 100
		bad.mu.Unlock()
		l := put(t, fc, "small")
		if len(l.GetReplicas()) != 3 {
			t.Fatalf("replicas %v, want 3", l.GetReplicas())
		}
		for _, r := range l.GetReplicas() {
			if r.GetNodeId() == bad.id {
				t.Fatalf("the failing node %s holds a replica", bad.id)
			}
		}
	})
}

// Attr, read while commits that carry deferred changes finish, never
// reports a change as undone: it reads the attributes and the changes on
// their way in one look (a commit replaces the one and clears the other
// together).
func TestAttrDuringCommits(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	ctx := context.Background()
	f := openNew(t, fc.client(t, nil), "f")
	for i := range 300 {
		if _, err := f.WriteAt(ctx, []byte("data"), int64(i)); err != nil {
			t.Fatal(err)
		}
		mode := uint32(0o600 | i%2<<6) // 0600 or 0700, alternating
		if !f.DeferAttr(SetAttr{Mode: &mode}) {
			t.Fatal("DeferAttr on a written file declined")
		}
		synced := make(chan error, 1)
		go func() { synced <- f.Sync(ctx) }()
		for done := false; !done; {
			select {
			case err := <-synced:
				if err != nil {
					t.Fatal(err)
				}
				done = true
			default:
			}
			if got := f.Attr().Mode & 0o777; got != mode {
				t.Fatalf("iteration %d: Attr reports mode %o while the commit carrying %o ends", i, got, mode)
			}
		}
	}
}

package client

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
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
	if !f.Unflushed() {
		t.Fatal("Unflushed is false with a write and changes pending")
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if f.Unflushed() {
		t.Fatal("Unflushed is true after Flush")
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

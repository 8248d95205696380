package diskstore

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/shoalfs/shoal/chunkserver/chunk"
)

func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*13+i>>11)
	}
	return b
}

// directStore opens a store in a test directory and starts replica
// (1, 1) in it, or skips the test if the directory's filesystem does not
// support O_DIRECT.
func directStore(t *testing.T) (*Store, *writer) {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w, err := s.Create(t.Context(), 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f := openDirect(w.(*writer).f.Name(), os.O_WRONLY); f == nil {
		t.Skip("the test directory's filesystem does not support O_DIRECT")
	} else {
		f.Close()
	}
	return s, w.(*writer)
}

// A stream in pieces of odd sizes goes out in whole aligned buffers with
// O_DIRECT, the rest through the page cache, and an overwrite in the
// middle lands on top: the replica reads back exactly.
func TestDirectWrites(t *testing.T) {
	s, w := directStore(t)
	ctx := t.Context()
	want := pattern(1, 5<<20+17)
	off := 0
	for i, n := range []int{1 << 20, 300_001, 7, 1 << 20, 65536, 999_999} {
		if _, err := w.WriteAt(want[off:off+n], int64(off)); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		off += n
	}
	if _, err := w.WriteAt(want[off:], int64(off)); err != nil {
		t.Fatal(err)
	}
	patch := pattern(2, 100_000)
	copy(want[2<<20:], patch)
	if _, err := w.WriteAt(patch, 2<<20); err != nil {
		t.Fatal(err)
	}
	direct := w.direct
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if direct < 4<<20 {
		t.Errorf("%d bytes went out with O_DIRECT, want at least the 4 whole MiB", direct)
	}
	// From a write-behind buffer in huge pages, given back at the commit.
	if mapped, out := s.bufs.Stats(); mapped == 0 || out != 0 {
		t.Errorf("huge-page buffers: %d bytes mapped, %d out; want some mapped, none out", mapped, out)
	}
	got := make([]byte, len(want))
	if n, err := s.ReadAt(ctx, 1, 1, got, 0); n != len(want) || (err != nil && n != len(want)) {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the replica differs from what was written")
	}
}

// A small replica never opens the O_DIRECT descriptor: one open per
// replica, as before.
func TestSmallReplicaNoDirect(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Create(t.Context(), 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(pattern(3, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w.(*writer).noDirect || w.(*writer).direct != 0 {
		t.Fatalf("a 4 KiB replica tried O_DIRECT (noDirect %v, %d bytes direct)", w.(*writer).noDirect, w.(*writer).direct)
	}
}

// Large aligned reads of a sealed replica go through its O_DIRECT
// descriptor, small and unaligned ones through the page cache; both
// read the replica's bytes and verify them, and damage on disk is found
// either way.
func TestDirectReads(t *testing.T) {
	s, w := directStore(t)
	ctx := t.Context()
	want := pattern(4, 3<<20+100)
	if _, err := w.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	hd, err := s.acquire(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.release(hd)

	small := make([]byte, 5000)
	if _, err := s.ReadAt(ctx, 1, 1, small, 70_000); err != nil || !bytes.Equal(small, want[70_000:75_000]) {
		t.Fatalf("small read: %v", err)
	}
	if hd.direct != nil {
		t.Fatal("a small read opened the O_DIRECT descriptor")
	}
	bp := s.bufs.Get() // aligned, in a huge page
	defer s.bufs.Put(bp)
	big := *bp
	if _, err := s.ReadAt(ctx, 1, 1, big, 1<<20); err != nil || !bytes.Equal(big, want[1<<20:2<<20]) {
		t.Fatalf("large aligned read: %v", err)
	}
	if hd.direct == nil {
		t.Fatal("a large aligned read did not use O_DIRECT")
	}

	// Flip a byte through the page cache: the direct read still sees it.
	f, err := os.OpenFile(ReplicaPath(s.Dir(), 1, 1), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{want[1<<20+5] ^ 1}
	if _, err := f.WriteAt(b, DataOffset+1<<20+5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAt(ctx, 1, 1, big, 1<<20); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("large read of a damaged block: %v, want ErrCorrupt", err)
	}
}

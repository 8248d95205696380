package diskstore

import (
	"bytes"
	"testing"
)

func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*13+i>>11)
	}
	return b
}

// A stream in pieces of odd sizes goes out in whole aligned buffers with
// O_DIRECT, the rest through the page cache, and an overwrite in the
// middle lands on top: the replica reads back exactly.
func TestDirectWrites(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	w, err := s.Create(ctx, 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f := openDirect(w.(*writer).f.Name()); f == nil {
		t.Skip("the test directory's filesystem does not support O_DIRECT")
	} else {
		f.Close()
	}
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
	direct := w.(*writer).direct
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if direct < 4<<20 {
		t.Errorf("%d bytes went out with O_DIRECT, want at least the 4 whole MiB", direct)
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

package diskstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// spareFiles lists the spare directory of the store rooted at dir.
func spareFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(spareRoot(dir))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// New replicas take spare files, more of them than the pool holds (so
// some are made while the writes go on, or by Create itself), and read
// back; Close removes the spares, and Open removes any a crash left.
func TestSpareFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tookSpare := 0
	const n = 3 * spareCount
	for i := range n {
		w, err := s.Create(ctx, 1, uint64(i+1), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(w.(*writer).f.Name()) == spareRoot(dir) {
			tookSpare++
		}
		if _, err := w.WriteAt(pattern(byte(i), 4096+i), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if tookSpare == 0 {
		t.Errorf("none of %d new replicas took a spare file", n)
	}
	for i := range n {
		got := make([]byte, 4096+i)
		if k, err := s.ReadAt(ctx, 1, uint64(i+1), got, 0); k != len(got) {
			t.Fatalf("replica %d: read %d bytes: %v", i, k, err)
		}
		if !bytes.Equal(got, pattern(byte(i), 4096+i)) {
			t.Fatalf("replica %d differs from what was written", i)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if names := spareFiles(t, dir); len(names) != 0 {
		t.Fatalf("spare files after Close: %v", names)
	}

	if err := os.WriteFile(filepath.Join(spareRoot(dir), "spare-left-by-a-crash"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range spareFiles(t, dir) {
		if name == "spare-left-by-a-crash" {
			t.Fatal("Open kept a spare file left by a crash")
		}
	}
	if _, err := s.Stat(ctx, 1, 1); err != nil {
		t.Fatalf("replica after reopen: %v", err)
	}
}

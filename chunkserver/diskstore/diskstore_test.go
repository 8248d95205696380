package diskstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/diskstore"
	"github.com/shoalfs/shoal/chunkserver/storetest"
	"github.com/shoalfs/shoal/internal/testlog"
)

func open(t *testing.T, dir string, capacity int64) *diskstore.Store {
	t.Helper()
	s, err := diskstore.Open(dir, diskstore.Options{Capacity: capacity, Log: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkserver.Store { return open(t, t.TempDir(), 0) },
		storetest.WithCorrupt(flipByte),
		storetest.WithReopen(func(t *testing.T, s chunkserver.Store) chunkserver.Store {
			s.Close()
			return open(t, s.(*diskstore.Store).Dir(), 0)
		}))
}

func TestConformanceWithCapacity(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkserver.Store { return open(t, t.TempDir(), 64<<20) })
}

// flipByte damages data byte off of a replica file.
func flipByte(t *testing.T, s chunkserver.Store, id chunkserver.ChunkID, version uint64, off int64) {
	t.Helper()
	path := diskstore.ReplicaPath(s.(*diskstore.Store).Dir(), id, version)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, diskstore.DataOffset+off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, diskstore.DataOffset+off); err != nil {
		t.Fatal(err)
	}
}

// tempFiles lists the temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var temps []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			temps = append(temps, path)
		}
		return nil
	})
	return temps
}

func TestSmallChunkMakesSmallFile(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	if _, err := storetest.Put(t.Context(), s, 1, 1, storetest.Data(1, 4096)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(diskstore.ReplicaPath(s.Dir(), 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(diskstore.HeaderSize + 4096 + 4); fi.Size() != want {
		t.Fatalf("a 4 KiB chunk is a %d-byte file, want %d", fi.Size(), want)
	}
}

func TestCapacityExhausted(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 3<<20)
	ctx := t.Context()
	if _, err := storetest.Put(ctx, s, 1, 1, storetest.Data(1, 2<<20)); err != nil {
		t.Fatal(err)
	}
	_, err := storetest.Put(ctx, s, 2, 1, storetest.Data(2, 2<<20))
	if !errors.Is(err, chunkserver.ErrNoSpace) {
		t.Fatalf("put past the capacity: %v, want ErrNoSpace", err)
	}
	if temps := tempFiles(t, dir); len(temps) != 0 {
		t.Fatalf("temporary files left after ErrNoSpace: %v", temps)
	}
	if _, err := s.Stat(ctx, 2, 1); !errors.Is(err, chunkserver.ErrNotFound) {
		t.Fatalf("stat of the failed replica: %v, want ErrNotFound", err)
	}
	// The store still works, and a delete makes room.
	if _, err := storetest.Put(ctx, s, 3, 1, storetest.Data(3, 100<<10)); err != nil {
		t.Fatalf("small put after ErrNoSpace: %v", err)
	}
	if err := s.Delete(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.Put(ctx, s, 2, 1, storetest.Data(2, 2<<20)); err != nil {
		t.Fatalf("put after a delete made room: %v", err)
	}
	// A base that does not fit fails at Create.
	if _, err := s.Create(ctx, 3, 2, 1, 2<<20); !errors.Is(err, chunkserver.ErrNoSpace) {
		t.Fatalf("create with a base past the capacity: %v, want ErrNoSpace", err)
	}
}

func TestOpenSweepsTempFilesAndLocks(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	if _, err := storetest.Put(t.Context(), s, 1, 1, storetest.Data(1, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := diskstore.Open(dir, diskstore.Options{}); err == nil {
		t.Fatal("a second Open of a directory in use succeeded")
	}
	stray := filepath.Join(filepath.Dir(diskstore.ReplicaPath(dir, 1, 1)), ".tmp-0000000000000001-0000000000000002-123")
	if err := os.WriteFile(stray, []byte("half a replica"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, 0)
	if temps := tempFiles(t, dir); len(temps) != 0 {
		t.Fatalf("Open left temporary files: %v", temps)
	}
	if _, err := s.Stat(t.Context(), 1, 1); err != nil {
		t.Fatalf("sealed replica after reopen: %v", err)
	}
}

func TestDamagedFiles(t *testing.T) {
	data := storetest.Data(1, 3*chunkserver.BlockSize+5)
	trailer := int64(len(data) + 4*4) // after the data and 4 checksums
	cases := []struct {
		name   string
		damage func(path string) error
		want   string
	}{
		// A torn file loses its trailer, the last thing written.
		{"truncated", func(p string) error { return os.Truncate(p, 1000) }, "bad magic"},
		{"too short for a trailer", func(p string) error { return os.Truncate(p, 10) }, "shorter than"},
		{"trailer cut off", func(p string) error { return cutTail(p, 1) }, "bad magic"},
		{"bad magic", func(p string) error { return patchFile(p, trailer, []byte("XXXX")) }, "bad magic"},
		{"trailer bit flip", func(p string) error { return patchFile(p, trailer+33, []byte{0x7f}) }, "header checksum"},
		{"table longer than the trailer says", func(p string) error {
			// A trailer moved 4 bytes on: the size no longer adds up.
			f, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, append(append(f[:trailer:trailer], 0, 0, 0, 0), f[trailer:]...), 0o644)
		}, "trailer says"},
		{"renamed to another replica", func(p string) error {
			return os.Rename(p, strings.Replace(p, "-0000000000000001.chunk", "-0000000000000002.chunk", 1))
		}, "header names"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, t.TempDir(), 0)
			if _, err := storetest.Put(t.Context(), s, 1, 1, data); err != nil {
				t.Fatal(err)
			}
			if err := c.damage(diskstore.ReplicaPath(s.Dir(), 1, 1)); err != nil {
				t.Fatal(err)
			}
			version := uint64(1)
			if c.name == "renamed to another replica" {
				version = 2
			}
			_, err := s.Stat(t.Context(), 1, version)
			if !errors.Is(err, chunkserver.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("stat: %v, want ErrCorrupt mentioning %q", err, c.want)
			}
			var walked error
			s.Walk(t.Context(), func(_ chunkserver.ChunkInfo, err error) error { walked = err; return nil })
			if !errors.Is(walked, chunkserver.ErrCorrupt) {
				t.Fatalf("walk reported %v, want ErrCorrupt", walked)
			}
		})
	}
}

// cutTail removes the last n bytes of path.
func cutTail(path string, n int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, fi.Size()-n)
}

func patchFile(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt(b, off)
	return err
}

package client

// Small files kept inline in the manager's records, against a real
// manager (Badger) and real chunkservers on 127.0.0.1.

import (
	"bytes"
	"context"
	"testing"
)

// locate0 returns the manager's layout entry for chunk 0 of ino.
func locate0(t *testing.T, c *Client, ino Ino) *chunkLoc {
	t.Helper()
	f, err := c.Open(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(context.Background())
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.layout[0]
}

// writeAt opens ino, writes p at off, and closes it.
func writeAt(t *testing.T, c *Client, ino Ino, off int64, p []byte) {
	t.Helper()
	ctx := context.Background()
	f, err := c.Open(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(ctx, p, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestInlineFiles(t *testing.T) {
	const inlineMax = 8 << 10
	cl, c := realClusterInline(t, 3, 2, inlineMax)
	ctx := context.Background()
	mgr := cl.Manager().M
	check := func(t *testing.T, ino Ino, want []byte, inline bool) {
		t.Helper()
		if got := readAll(t, c, ino, 3000); !bytes.Equal(got, want) {
			t.Fatalf("read back %q..., want %q...", got[:min(len(got), 16)], want[:min(len(want), 16)])
		}
		l := locate0(t, c, ino)
		switch {
		case l == nil:
			t.Fatal("no chunk 0")
		case inline && (l.inline == nil || l.chunkID != 0 || len(l.replicas) != 0):
			t.Fatalf("chunk 0 %+v, want it inline", l)
		case !inline && (l.inline != nil || len(l.replicas) != 3):
			t.Fatalf("chunk 0 %+v, want it on 3 chunkservers", l)
		}
	}

	t.Run("small file", func(t *testing.T) {
		pending := mgr.PendingAllocations()
		e := createAllocated(t, c, "small")
		data := randBytes(10, 4096)
		writeClose(t, c, e, data, func(f *File) { writeInPieces(t, f, data, 0, 1000) })
		check(t, e.Ino, data, true)
		if n := mgr.PendingAllocations(); n != pending {
			t.Fatalf("%d pending allocations after the inline commit, %d before the create: the create's was not handed back", n, pending)
		}
		// Fsync: nothing on chunkservers to sync, and no error.
		f, err := c.Open(ctx, e.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(ctx); err != nil {
			t.Fatalf("fsync of an inline file: %v", err)
		}
		f.Close(ctx)
	})

	t.Run("sparse start", func(t *testing.T) {
		e := createAllocated(t, c, "sparse")
		want := append(make([]byte, 100), "tail"...)
		writeClose(t, c, e, want, func(f *File) { writeInPieces(t, f, want[100:], 100, 4) })
		check(t, e.Ino, want, true)
	})

	t.Run("overwrite in the middle", func(t *testing.T) {
		e := createAllocated(t, c, "middle")
		data := randBytes(11, 5000)
		writeClose(t, c, e, data, func(f *File) { writeInPieces(t, f, data, 0, 5000) })
		writeAt(t, c, e.Ino, 1000, []byte("patch"))
		copy(data[1000:], "patch")
		check(t, e.Ino, data, true)
	})

	t.Run("grows past the limit", func(t *testing.T) {
		e := createAllocated(t, c, "grows")
		data := randBytes(12, 3000)
		writeClose(t, c, e, data, func(f *File) { writeInPieces(t, f, data, 0, 3000) })
		more := randBytes(13, inlineMax)
		writeAt(t, c, e.Ino, int64(len(data)), more)
		check(t, e.Ino, append(data, more...), false)
	})

	t.Run("truncated", func(t *testing.T) {
		e := createAllocated(t, c, "truncated")
		data := randBytes(14, 4000)
		writeClose(t, c, e, data, func(f *File) { writeInPieces(t, f, data, 0, 4000) })
		f, err := c.Open(ctx, e.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(ctx, 1000); err != nil {
			t.Fatal(err)
		}
		check(t, e.Ino, data[:1000], true)
		// A write after a truncate to 0 on the same File must not
		// bring the old bytes back.
		if err := f.Truncate(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(ctx, []byte("x"), 2000); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, e.Ino, append(make([]byte, 2000), 'x'), true)
	})

	t.Run("two writers", func(t *testing.T) {
		e := createAllocated(t, c, "two")
		data := randBytes(15, 6000)
		writeClose(t, c, e, data, func(f *File) { writeInPieces(t, f, data, 0, 6000) })
		// A opens, then B writes and closes, then A writes other bytes
		// and closes: both writes are in the file.
		a, err := c.Open(ctx, e.Ino)
		if err != nil {
			t.Fatal(err)
		}
		other := otherClient(t, cl, inlineMax)
		writeAt(t, other, e.Ino, 10, []byte("from B"))
		if _, err := a.WriteAt(ctx, []byte("from A"), 5000); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		copy(data[10:], "from B")
		copy(data[5000:], "from A")
		check(t, e.Ino, data, true)
	})

	t.Run("written by a client that keeps nothing inline", func(t *testing.T) {
		e := createAllocated(t, c, "converted")
		data := randBytes(16, 2000)
		writeClose(t, c, e, data, func(f *File) { writeInPieces(t, f, data, 0, 2000) })
		writeAt(t, otherClient(t, cl, 0), e.Ino, 500, []byte("chunked"))
		copy(data[500:], "chunked")
		check(t, e.Ino, data, false)
	})

	t.Run("readable with every chunkserver down", func(t *testing.T) {
		e := createAllocated(t, c, "no chunkservers")
		data := randBytes(17, 7000)
		writeClose(t, c, e, data, func(f *File) { writeInPieces(t, f, data, 0, 7000) })
		for i := range cl.Size() {
			if err := cl.StopChunkServer(i, true); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for i := range cl.Size() {
				cl.StartChunkServer(i)
			}
		})
		check(t, e.Ino, data, true)
	})
}

// otherClient is a second client of cl's manager, as another mount.
func otherClient(t *testing.T, cl interface{ ManagerAddr() string }, inlineMax int64) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Manager = cl.ManagerAddr()
	cfg.InlineMax = inlineMax
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

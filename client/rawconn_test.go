package client

// Reads over the raw read protocol, against a real manager and real
// chunkservers on 127.0.0.1. (The fake chunkservers of fake_test.go
// speak only gRPC: the read tests on them cover the fallback.)

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// rawStats counts, over the client's connections, the idle raw
// connections and the idle ReadChunks streams, and whether any
// chunkserver was found to speak only gRPC.
func rawStats(c *Client) (raw, streams int, noRaw bool) {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	for _, conn := range c.pool.conns {
		conn.mu.Lock()
		raw += len(conn.rawIdle)
		streams += len(conn.idle)
		noRaw = noRaw || conn.noRaw
		conn.mu.Unlock()
	}
	return raw, streams, noRaw
}

func TestRawReads(t *testing.T) {
	// Over TCP: the chunkservers are on this host.
	cl, c := realClusterWith(t, 3, 2, func(c *Config) { c.LocalReads = false })
	ctx := context.Background()
	data := randBytes(21, 3*mib+777)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Sequential (readahead pages, returned uncopied by ReadAtVec) and
	// small random reads.
	if got := readAll(t, c, a.Ino, 128<<10); !bytes.Equal(got, data) {
		t.Fatal("sequential read differs")
	}
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	var got []byte
	for off := int64(0); off < int64(len(data)); {
		parts, release, n, err := f.ReadAtVec(ctx, make([]byte, 300_000), off)
		if n == 0 {
			t.Fatalf("ReadAtVec at %d: %v", off, err)
		}
		if parts == nil {
			t.Fatalf("ReadAtVec at %d of a sequential reader returned no parts", off)
		}
		for _, p := range parts {
			got = append(got, p...)
		}
		release()
		off += int64(n)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("ReadAtVec's parts differ from the file")
	}
	for _, off := range []int64{5 * mib / 2, 77, mib - 100, 3 * mib} {
		buf := make([]byte, 4096)
		n, _ := f.ReadAt(ctx, buf, off)
		if !bytes.Equal(buf[:n], data[off:min(off+4096, int64(len(data)))]) {
			t.Fatalf("read of 4096 at %d differs", off)
		}
	}
	raw, streams, noRaw := rawStats(c)
	if raw == 0 || streams != 0 || noRaw {
		t.Fatalf("%d idle raw connections, %d idle ReadChunks streams, gRPC only: %v; want reads over raw connections only",
			raw, streams, noRaw)
	}

	// A chunkserver restart leaves the idle connections to it stale: a
	// read replaces them, rather than calling the replica unreachable.
	f.mu.Lock()
	loc := f.layout[0]
	f.mu.Unlock()
	for i := range cl.Size() {
		if err := cl.StopChunkServer(i, false); err != nil {
			t.Fatal(err)
		}
		if err := cl.StartChunkServer(i); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range loc.replicas {
		b, err := c.readReplica(ctx, r.addr, loc.chunkID, loc.version, 1000, 5000, nil)
		if err != nil || !bytes.Equal(b, data[1000:6000]) {
			t.Fatalf("read of %s after its restart: %v", r.addr, err)
		}
	}
}

// Pages handed out by ReadAtVec are not reused until released, even as
// readahead moves past them and a writer takes every buffer the pool
// has: a reader that holds several results before checking them sees
// the file's bytes in each.
func TestHeldPagesStayIntact(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: 4 * mib})
	c := fc.client(t, func(cfg *Config) { cfg.ReadAhead = 2 * mib })
	ctx := context.Background()
	data := randBytes(77, 24*mib)
	w := openNew(t, c, "data")
	writeInPieces(t, w, data, 0, mib)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := c.Open(ctx, w.ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)

	// A writer of another file keeps taking pooled buffers and filling
	// them, so a page given back too early is overwritten.
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		g := openNew(t, c, "churn")
		junk := bytes.Repeat([]byte{0xEE}, mib)
		for i := 0; !stop.Load(); i++ {
			if _, err := g.WriteAt(ctx, junk, int64(i%8)*mib); err != nil {
				t.Error(err)
				return
			}
			if i%8 == 7 {
				if err := g.Flush(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	defer func() { stop.Store(true); wg.Wait() }()

	type result struct {
		off     int64
		parts   [][]byte
		release func()
	}
	var queue []result
	check := func(r result) {
		t.Helper()
		at := r.off
		for _, p := range r.parts {
			if !bytes.Equal(p, data[at:at+int64(len(p))]) {
				t.Fatalf("a held part at %d no longer holds the file's bytes", at)
			}
			at += int64(len(p))
		}
		r.release()
	}
	for pass := range 2 {
		for off := int64(0); off < int64(len(data)); {
			buf := make([]byte, 256<<10)
			parts, release, n, err := f.ReadAtVec(ctx, buf, off)
			if n == 0 {
				t.Fatalf("pass %d: ReadAtVec at %d: %v", pass, off, err)
			}
			if parts == nil {
				parts = [][]byte{buf[:n]}
			}
			queue = append(queue, result{off, parts, release})
			if len(queue) > 12 { // hold 3 MiB of results, more than the readahead window
				check(queue[0])
				queue = queue[1:]
			}
			off += int64(n)
		}
	}
	for _, r := range queue {
		check(r)
	}
}

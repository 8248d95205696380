package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	shoalpb "github.com/shoalfs/shoal/proto"
)

func TestReadYourWritesAndEOF(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	base := randBytes(2, 2*mib+100)
	writeInPieces(t, f, base, 0, 64<<10)
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Unsynced overwrite and extension are visible to ReadAt at once.
	patch := []byte("hello, world")
	if _, err := f.WriteAt(ctx, patch, mib-5); err != nil {
		t.Fatal(err)
	}
	tail := []byte("tail")
	if _, err := f.WriteAt(ctx, tail, int64(len(base))+1000); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), base...)
	copy(want[mib-5:], patch)
	want = append(want, make([]byte, 1000)...)
	want = append(want, tail...)
	if f.Size() != int64(len(want)) {
		t.Errorf("Size = %d, want %d", f.Size(), len(want))
	}
	got := make([]byte, len(want)+50)
	n, err := f.ReadAt(ctx, got, 0)
	if n != len(want) || !errors.Is(err, io.EOF) {
		t.Errorf("ReadAt past end = %d, %v; want %d, EOF", n, err, len(want))
	}
	if !bytes.Equal(got[:n], want) {
		t.Error("ReadAt does not see the file's own unsynced writes")
	}
	if n, err := f.ReadAt(ctx, got, int64(len(want))); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("ReadAt at end = %d, %v; want 0, EOF", n, err)
	}
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c, a.Ino, 100_000); !bytes.Equal(got, want) {
		t.Error("after Sync, a fresh Open reads different bytes")
	}
}

func TestReadChecksumFailover(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	data := randBytes(6, mib+5000)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := fc.layout(a.Ino)[0]
	badID := l.Replicas[0].NodeId
	bad := fc.nodeByID(badID)
	bad.mu.Lock()
	bad.corrupt = true
	bad.mu.Unlock()

	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	got := make([]byte, 70_000)
	if _, err := f.ReadAt(ctx, got, 100_000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[100_000:170_000]) {
		t.Fatal("failover read returned wrong bytes")
	}
	waitFor(t, 5*time.Second, "ReportBadReplica for "+badID, func() bool {
		fc.mgr.mu.Lock()
		defer fc.mgr.mu.Unlock()
		for _, r := range fc.mgr.bad {
			if r.NodeId == badID && r.ChunkId == l.ChunkId && r.Version == l.Version && strings.Contains(r.Reason, "checksum") {
				return true
			}
		}
		return false
	})

	// Every replica corrupt: EIO naming the chunk.
	for _, n := range fc.nodes {
		n.mu.Lock()
		n.corrupt = true
		n.mu.Unlock()
	}
	f2, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close(ctx)
	_, err = f2.ReadAt(ctx, got, 0)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "all 2 replicas failed") {
		t.Errorf("all corrupt: err = %v, want EIO saying all replicas failed", err)
	}
}

func TestReadSkipsDeadReplicaWithoutReport(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	data := randBytes(7, 300_000)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Point the first replica at a dead address.
	fc.mgr.mu.Lock()
	l := fc.mgr.inodes[uint64(a.Ino)].layout[0]
	l.Replicas[0] = &shoalpb.Location{NodeId: l.Replicas[0].NodeId, Addr: "127.0.0.1:1"}
	fc.mgr.mu.Unlock()
	if got := readAll(t, c, a.Ino, mib); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	fc.wantNoBadReports(t, "an unreachable replica")
}

func TestHolesAndTruncate(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	p := randBytes(30, 1000)
	if _, err := f.WriteAt(ctx, p, 3*mib+10); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3*mib+10)
	want = append(want, p...)
	if got := readAll(t, c, a.Ino, 700_000); !bytes.Equal(got, want) {
		t.Errorf("sparse file reads %d bytes, mismatch", len(got))
	}
	if err := f.Truncate(ctx, 3*mib+500); err != nil {
		t.Fatal(err)
	}
	if f.Size() != 3*mib+500 {
		t.Errorf("Size after truncate = %d", f.Size())
	}
	buf := make([]byte, 1000)
	n, err := f.ReadAt(ctx, buf, 3*mib)
	if n != 500 || !errors.Is(err, io.EOF) || !bytes.Equal(buf[10:500], p[:490]) {
		t.Errorf("read after truncate = %d, %v", n, err)
	}
	// Extend by truncate: zeros.
	if err := f.Truncate(ctx, 4*mib); err != nil {
		t.Fatal(err)
	}
	n, err = f.ReadAt(ctx, buf, 3*mib+400)
	if n != len(buf) || err != nil || !bytes.Equal(buf[100:], make([]byte, 900)) || !bytes.Equal(buf[:100], p[390:490]) {
		t.Errorf("read after extend = %d, %v", n, err)
	}
}

func TestReadahead(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: 4 * mib})
	c := fc.client(t, func(c *Config) { c.ReadAhead = 4 * mib })
	ctx := context.Background()
	data := randBytes(60, 10*mib+333)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	n := fc.nodes[0]
	n.mu.Lock()
	n.reads = 0
	n.mu.Unlock()
	const step = 128 << 10
	if got := readAll(t, c, a.Ino, step); !bytes.Equal(got, data) {
		t.Fatal("sequential read differs")
	}
	n.mu.Lock()
	reads := n.reads
	n.mu.Unlock()
	pages := (len(data) + readPage - 1) / readPage
	if reads > pages+2 {
		t.Errorf("%d ReadChunk calls for %d reads of %d pages: readahead not used", reads, len(data)/step, pages)
	}
	// Random reads still work and are exact.
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	rng := rand.New(rand.NewPCG(1, 1))
	for range 50 {
		off := rng.Int64N(int64(len(data)))
		buf := make([]byte, 1+rng.IntN(300_000))
		m, err := f.ReadAt(ctx, buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:m], data[off:off+int64(m)]) {
			t.Fatalf("random read at %d differs", off)
		}
	}
}

// The kernel's readahead has several requests in flight, which come in
// any order: a read up to a few pages ahead of the run continues it, and
// the pages fetched stay cached, each fetched once.
func TestReadaheadOutOfOrder(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: 4 * mib})
	c := fc.client(t, func(c *Config) { c.ReadAhead = 4 * mib })
	ctx := context.Background()
	data := randBytes(62, 12*mib)
	f := putOpen(t, c, data)
	n := fc.nodes[0]
	n.mu.Lock()
	n.reads = 0
	n.mu.Unlock()
	buf := make([]byte, mib)
	for _, page := range []int64{0, 1, 2, 5, 3, 4, 8, 6, 7, 11, 9, 10} {
		off := page * mib
		if _, err := f.ReadAt(ctx, buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+mib]) {
			t.Fatalf("read of page %d differs", page)
		}
	}
	n.mu.Lock()
	reads := n.reads
	n.mu.Unlock()
	if reads > 12 {
		t.Errorf("%d ReadChunk calls for 12 pages read out of order: pages dropped and fetched again", reads)
	}
}

// A random read that happens to land just after the previous one is not
// taken for a sequential run: it is read directly, without a page fetch
// or a prefetch. A third read in a row continuing the run is paged.
func TestReadaheadIgnoresOneNearRandomRead(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: 4 * mib})
	c := fc.client(t, func(c *Config) { c.ReadAhead = 4 * mib })
	ctx := context.Background()
	data := randBytes(61, 10*mib)
	f := putOpen(t, c, data)
	cachedPages := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.ra.pages)
	}
	buf := make([]byte, 4096)
	for i, off := range []int64{5*mib + 8192, 5*mib + 200_000, 5*mib + 204_096} {
		if _, err := f.ReadAt(ctx, buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+4096]) {
			t.Fatalf("read at %d differs", off)
		}
		got, paged := cachedPages(), i == 2
		if paged != (got > 0) {
			t.Errorf("after read %d at %d: %d pages cached, want paged=%v", i, off, got, paged)
		}
	}
}

// Random reads that keep landing near one another, none where the
// last ended, are never paged.
func TestReadaheadNeedsAnExactContinuation(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: 4 * mib})
	c := fc.client(t, func(c *Config) { c.ReadAhead = 4 * mib })
	data := randBytes(63, 10*mib)
	f := putOpen(t, c, data)
	buf := make([]byte, 4096)
	for _, off := range []int64{5 * mib, 6*mib + 100_000, 5*mib + 300_000, 7 * mib, 6 * mib} {
		if _, err := f.ReadAt(context.Background(), buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+4096]) {
			t.Fatalf("read at %d differs", off)
		}
		f.mu.Lock()
		pages := len(f.ra.pages)
		f.mu.Unlock()
		if pages > 0 {
			t.Fatalf("after a read at %d, %d pages cached: near random reads were taken for a sequential run", off, pages)
		}
	}
}

// Small reads go over long-lived ReadChunks streams, one at a time on
// each, so sequential reads share one stream; larger reads are ReadChunk
// calls of their own, and so are small reads of chunkservers that
// predate ReadChunks.
func TestSmallReadsShareAStream(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	data := randBytes(8, 12*mib)
	f := putOpen(t, c, data)
	n := fc.nodes[0]
	counts := func() (reads, small, streams int) {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.reads, n.smallReads, n.streams
	}
	// Each read lands far from the one before, so none is taken for a
	// sequential run and served from readahead pages.
	read := func(off int64, size int) {
		t.Helper()
		buf := make([]byte, size)
		if _, err := f.ReadAt(context.Background(), buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+int64(size)]) {
			t.Fatalf("read of %d at %d differs", size, off)
		}
	}
	read(10*mib+5000, 4096)
	// Until the connection is seen ready, a stream is closed after its read.
	conn, err := c.pool.conn(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the connection to be seen ready", func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return conn.ready
	})
	reads0, small0, streams0 := counts()
	for _, off := range []int64{3 * mib, 7 * mib, mib / 5, 9 * mib / 2, 9 * mib} {
		read(off, 4096)
	}
	read(mib, smallRead)
	if reads, small, streams := counts(); reads-reads0 != 6 || small-small0 != 6 || streams-streams0 > 1 {
		t.Fatalf("6 small reads: %d reads, %d of them small, on %d new streams; want 6, 6, at most 1",
			reads-reads0, small-small0, streams-streams0)
	}
	read(11*mib, smallRead+1)
	if reads, small, _ := counts(); reads-reads0 != 7 || small-small0 != 6 {
		t.Fatalf("a read of %d bytes went on a ReadChunks stream", smallRead+1)
	}

	n.mu.Lock()
	n.noSmall = true
	n.mu.Unlock()
	conn.mu.Lock()
	for _, rs := range conn.idle {
		rs.cancel()
	}
	conn.idle = nil
	conn.mu.Unlock()
	read(5*mib/2, 4096)
	read(8*mib, 100_000)
	if reads, small, _ := counts(); reads-reads0 != 9 || small-small0 != 6 {
		t.Fatalf("on a chunkserver without ReadChunks: %d reads, %d small; want 9 and 6", reads-reads0, small-small0)
	}
	fc.wantNoBadReports(t, "a replica without ReadChunks")
}

// A small read that hangs on one replica gives up on it after
// RPCTimeout and reads the next; one whose caller gives up returns at
// once, and its stream is closed.
func TestSmallReadTimeoutAndCancel(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, func(c *Config) { c.RPCTimeout = 300 * time.Millisecond; c.OpTimeout = 5 * time.Second })
	data := randBytes(10, 4*mib)
	f := putOpen(t, c, data)
	stall := func(n *fakeNode) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.stallReads = true
	}
	stall(fc.nodeByID(fc.layout(f.Ino())[0].Replicas[0].NodeId))
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(context.Background(), buf, 300_000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data[300_000:300_000+4096]) {
		t.Fatal("read past a hung replica differs")
	}
	fc.wantNoBadReports(t, "a hung replica")

	for _, n := range fc.nodes {
		stall(n)
	}
	stalled := func() int {
		sum := 0
		for _, n := range fc.nodes {
			n.mu.Lock()
			sum += n.stalled
			n.mu.Unlock()
		}
		return sum
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(ctx, buf, 5*mib/2) // far from the last read: not paged
		done <- err
	}()
	waitFor(t, 10*time.Second, "the read to hang", func() bool { return stalled() > 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v, want context.Canceled", err)
	}
	waitFor(t, 10*time.Second, "the hung read's stream to end", func() bool { return stalled() == 0 })
}

// The read streams a client keeps idle do not hold up a chunkserver's
// graceful stop: its GOAWAY has the client close them.
func TestIdleReadStreamsLetGracefulStopEnd(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	data := randBytes(9, 8*mib)
	f := putOpen(t, c, data)
	n := fc.nodes[0]
	conn, err := c.pool.conn(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	off := int64(3 * mib / 2)
	waitFor(t, 10*time.Second, "a read stream kept idle", func() bool {
		// Far from the last read: not a sequential run, not paged.
		off = 8*mib - off
		if _, err := f.ReadAt(context.Background(), buf, off); err != nil {
			t.Fatal(err)
		}
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return len(conn.idle) > 0
	})
	stopped := make(chan struct{})
	go func() {
		n.gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		n.gs.Stop()
		t.Fatal("GracefulStop did not return with an idle read stream open")
	}
}

// putOpen writes data to /f and opens it until the test ends.
func putOpen(t testing.TB, c *Client, data []byte) *File {
	t.Helper()
	ctx := context.Background()
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(ctx) })
	return f
}

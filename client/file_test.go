package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const mib = 1 << 20

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

func createFile(t testing.TB, c *Client, name string) Attr {
	t.Helper()
	a, err := c.Create(context.Background(), RootIno, name, CreateOptions{Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	return a.Attr
}

// openNew creates an empty file and opens it; it is closed when the test
// ends.
func openNew(t testing.TB, c *Client, name string) *File {
	t.Helper()
	ctx := context.Background()
	f, err := c.Open(ctx, createFile(t, c, name).Ino)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(ctx) })
	return f
}

// readAll reads the whole file through a fresh Open, in reads of step bytes.
func readAll(t testing.TB, c *Client, ino Ino, step int) []byte {
	t.Helper()
	ctx := context.Background()
	f, err := c.Open(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	var out []byte
	buf := make([]byte, step)
	for off := int64(0); ; {
		n, err := f.ReadAt(ctx, buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
}

// writeInPieces writes data at off in pieces of step bytes.
func writeInPieces(t testing.TB, f *File, data []byte, off int64, step int) {
	t.Helper()
	for i := 0; i < len(data); i += step {
		p := data[i:min(i+step, len(data))]
		if n, err := f.WriteAt(context.Background(), p, off+int64(i)); err != nil || n != len(p) {
			t.Fatalf("write at %d: n=%d err=%v", off+int64(i), n, err)
		}
	}
}

func TestRoundTripMultiChunk(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	data := randBytes(1, 5*mib+mib/2+17)

	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	writeInPieces(t, f, data, 0, 300_000)
	if got := f.Size(); got != int64(len(data)) {
		t.Errorf("Size before Sync = %d, want %d", got, len(data))
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The manager has six chunks, each on two nodes, committed in order.
	lay := fc.layout(a.Ino)
	if len(lay) != 6 {
		t.Fatalf("layout has %d chunks, want 6", len(lay))
	}
	for idx, l := range lay {
		if len(l.Replicas) != 2 {
			t.Errorf("chunk %d on %d replicas, want 2", idx, len(l.Replicas))
		}
		want := uint64(mib)
		if idx == 5 {
			want = uint64(len(data) - 5*mib)
		}
		if l.Length != want {
			t.Errorf("chunk %d length %d, want %d", idx, l.Length, want)
		}
		for _, r := range l.Replicas {
			n := fc.nodeByID(r.NodeId)
			n.mu.Lock()
			got := n.chunks[ckey{l.ChunkId, l.Version}]
			n.mu.Unlock()
			if !bytes.Equal(got, data[idx*mib:idx*mib+l.Length]) {
				t.Errorf("chunk %d on %s: wrong bytes", idx, r.NodeId)
			}
		}
	}
	fc.mgr.mu.Lock()
	var order []uint64
	for _, cm := range fc.mgr.commits {
		for _, ch := range cm.Chunks {
			order = append(order, ch.Index)
		}
	}
	size := fc.mgr.inodes[uint64(a.Ino)].attr.Size
	fc.mgr.mu.Unlock()
	for i := range order {
		if order[i] != uint64(i) {
			t.Errorf("commit order %v, want 0..5 in order", order)
			break
		}
	}
	if size != uint64(len(data)) {
		t.Errorf("manager size %d, want %d", size, len(data))
	}

	for _, step := range []int{4096, 128 << 10, 3 * mib} {
		if got := readAll(t, c, a.Ino, step); !bytes.Equal(got, data) {
			t.Errorf("read back in steps of %d: %d bytes, mismatch", step, len(got))
		}
	}
	// Put/Get over the same path.
	var out bytes.Buffer
	if _, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/g", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Get(ctx, "/g", &out, nil); err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("Get = %d, %v; equal %v", n, err, bytes.Equal(out.Bytes(), data))
	}
}

// The head of the chain dies mid-stream: the chunk is written again on a
// chain without it, and the commit does not name it.
func TestPipelineRecoveryHeadFails(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 4, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	// Chunk 0 goes to node0 (head) and node1.
	fc.nodes[0].mu.Lock()
	fc.nodes[0].failAfter, fc.nodes[0].failWrites = 300<<10, 1
	fc.nodes[0].mu.Unlock()
	data := randBytes(3, 2*mib+mib/3)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	lay := fc.layout(a.Ino)
	for _, r := range lay[0].Replicas {
		if r.NodeId == "node0" {
			t.Errorf("chunk 0 committed on node0, which failed")
		}
	}
	if len(lay[0].Replicas) != 2 {
		t.Errorf("chunk 0 on %d replicas, want 2", len(lay[0].Replicas))
	}
	fc.mgr.mu.Lock()
	excluded := false
	for _, al := range fc.mgr.allocs {
		if al.Index == 0 && len(al.ExcludeNodes) == 1 && al.ExcludeNodes[0] == "node0" {
			excluded = true
		}
	}
	fc.mgr.mu.Unlock()
	if !excluded {
		t.Error("no AllocateChunk for chunk 0 excluded node0")
	}
	if got := readAll(t, c, a.Ino, mib); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
}

// The head of the chain hangs: after RPCTimeout the client gives up on it
// and writes the chunk elsewhere.
func TestPipelineStalledHead(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, func(c *Config) { c.RPCTimeout = 300 * time.Millisecond; c.OpTimeout = 5 * time.Second })
	ctx := context.Background()
	fc.nodes[0].mu.Lock()
	fc.nodes[0].stall = true
	fc.nodes[0].mu.Unlock()
	data := randBytes(9, 200_000)
	start := time.Now()
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("write took %v with a stalled node", took)
	}
	for _, r := range fc.layout(a.Ino)[0].Replicas {
		if r.NodeId == "node0" {
			t.Error("chunk committed on the stalled node")
		}
	}
	if got := readAll(t, c, a.Ino, mib); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
}

// A node in the middle of the chain dies: the head reports it (and the
// node after it) failed; with min_replicas 1 the chunk commits on what
// acknowledged.
func TestPipelineMiddleFailsCommitsSurvivors(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 3, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	fc.nodes[1].mu.Lock()
	fc.nodes[1].failAfter, fc.nodes[1].failWrites = 100<<10, 1
	fc.nodes[1].mu.Unlock()
	data := randBytes(4, mib/2)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := fc.layout(a.Ino)[0]
	if len(l.Replicas) != 1 || l.Replicas[0].NodeId != "node0" {
		t.Errorf("chunk 0 committed on %v, want only node0", l.Replicas)
	}
	if got := readAll(t, c, a.Ino, mib); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
}

// Fewer than min_replicas nodes can take the data: Sync fails with an
// errno and a message, and later writes report it.
func TestWriteFailsBelowMinReplicas(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	fc.nodes[1].mu.Lock()
	fc.nodes[1].failAfter, fc.nodes[1].failWrites = 1, 100
	fc.nodes[1].mu.Unlock()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(ctx, randBytes(5, 1000), 0); err != nil {
		t.Fatal(err)
	}
	err = f.Sync(ctx)
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync = %v, want ENOSPC or EIO", err)
	}
	if !strings.Contains(err.Error(), "chunk") {
		t.Errorf("error %q does not say which chunk", err)
	}
	if _, err := f.WriteAt(ctx, []byte("x"), 0); err == nil {
		t.Error("WriteAt after a failed write succeeded")
	}
	if err := f.Close(ctx); err == nil {
		t.Error("Close after a failed write returned nil")
	}
}

// The first replica serves corrupt data: the read fails over to the next
// and the manager hears about the bad one.
// An unreachable replica is skipped but not reported as bad.
// Random writes into sealed chunks make version v+1 patches that carry
// only the dirty ranges.
func TestRandomWritesSendOnlyDirtyRanges(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	data := randBytes(8, 2*mib)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	before := fc.layout(a.Ino)[1]

	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		off int64
		n   int
	}{{mib + 5000, 100}, {mib + 300_000, 4096}, {mib + 5050, 100}, {mib + 900_000, 10}}
	want := append([]byte(nil), data...)
	for i, w := range writes {
		p := bytes.Repeat([]byte{byte('a' + i)}, w.n)
		if _, err := f.WriteAt(ctx, p, w.off); err != nil {
			t.Fatal(err)
		}
		copy(want[w.off:], p)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	after := fc.layout(a.Ino)[1]
	if after.ChunkId != before.ChunkId || after.Version != before.Version+1 {
		t.Errorf("chunk 1 is %d v%d, want %d v%d", after.ChunkId, after.Version, before.ChunkId, before.Version+1)
	}
	if fc.layout(a.Ino)[0].Version != 1 {
		t.Error("chunk 0 was rewritten though untouched")
	}
	head := fc.nodeByID(after.Replicas[0].NodeId)
	var rec *writeRecord
	for _, w := range head.writeLog() {
		if w.hdr.ChunkId == after.ChunkId && w.hdr.Version == after.Version {
			rec = &w
		}
	}
	if rec == nil {
		t.Fatal("no WriteChunk of the new version on its head")
	}
	if rec.hdr.BaseVersion != before.Version || rec.hdr.BaseLength != before.Length {
		t.Errorf("base %d/%d, want %d/%d", rec.hdr.BaseVersion, rec.hdr.BaseLength, before.Version, before.Length)
	}
	wantRanges := [][2]uint64{{5000, 150}, {300_000, 4096}, {900_000, 10}}
	if len(rec.ranges) != len(wantRanges) {
		t.Fatalf("sent ranges %v, want %v", rec.ranges, wantRanges)
	}
	for i := range wantRanges {
		if rec.ranges[i] != wantRanges[i] {
			t.Errorf("sent ranges %v, want %v", rec.ranges, wantRanges)
		}
	}
	if got := readAll(t, c, a.Ino, 100_000); !bytes.Equal(got, want) {
		t.Error("read back after patch differs")
	}
}

// Appending to a file whose last chunk is partial patches that chunk.
func TestAppendToPartialChunk(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	var want []byte
	for i := range 3 {
		f, err := c.Open(ctx, a.Ino)
		if err != nil {
			t.Fatal(err)
		}
		p := randBytes(uint64(10+i), 400_000)
		if _, err := f.WriteAt(ctx, p, f.Size()); err != nil {
			t.Fatal(err)
		}
		want = append(want, p...)
		if err := f.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	lay := fc.layout(a.Ino)
	if lay[0].Length != mib || lay[0].Version != 3 || lay[1].Length != uint64(len(want)-mib) {
		t.Errorf("layout: chunk0 v%d len %d, chunk1 len %d", lay[0].Version, lay[0].Length, lay[1].Length)
	}
	if got := readAll(t, c, a.Ino, 64<<10); !bytes.Equal(got, want) {
		t.Error("read back differs")
	}
}

// Another writer commits the chunk between our allocation and our commit:
// ours is written again on top of it, last writer winning per byte.
func TestStaleVersionRewrites(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	other := fc.client(t, nil)
	ctx := context.Background()
	data := randBytes(20, 100_000)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fired atomic.Bool
	hookErr := errors.New("the other writer never ran")
	fc.mgr.beforeCommit = func() {
		if !fired.CompareAndSwap(false, true) {
			return // the other writer's own commit, or later ones
		}
		f, err := other.Open(ctx, a.Ino)
		if err == nil {
			_, err = f.WriteAt(ctx, bytes.Repeat([]byte("B"), 100), 50)
		}
		if err == nil {
			err = f.Close(ctx)
		}
		hookErr = err
	}
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(ctx, bytes.Repeat([]byte("A"), 100), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if hookErr != nil {
		t.Fatalf("other writer: %v", hookErr)
	}
	want := append([]byte(nil), data...)
	copy(want[50:], bytes.Repeat([]byte("B"), 100))
	copy(want[0:], bytes.Repeat([]byte("A"), 100))
	if got := readAll(t, c, a.Ino, mib); !bytes.Equal(got, want) {
		t.Errorf("got %q..., want %q...", got[:160], want[:160])
	}
	if v := fc.layout(a.Ino)[0].Version; v != 3 {
		t.Errorf("chunk 0 at v%d, want v3 (ours on top of the other writer's v2)", v)
	}
}

// A write buffer smaller than a chunk: writers seal partial chunks to
// stay within it, and nothing deadlocks.
func TestWriteBufferPressure(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: 4 * mib})
	c := fc.client(t, func(c *Config) { c.WriteBuffer = mib })
	ctx := context.Background()
	var wg sync.WaitGroup
	files := make([][]byte, 3)
	inos := make([]Ino, 3)
	for i := range files {
		files[i] = randBytes(uint64(40+i), 3*mib+1234)
		inos[i] = createFile(t, c, string(rune('a'+i))).Ino
	}
	errs := make(chan error, len(files))
	var peak int64
	var mu sync.Mutex
	for i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := c.Open(ctx, inos[i])
			if err != nil {
				errs <- err
				return
			}
			for off := 0; off < len(files[i]); off += 128 << 10 {
				if _, err := f.WriteAt(ctx, files[i][off:min(off+128<<10, len(files[i]))], int64(off)); err != nil {
					errs <- err
					return
				}
				used, _ := c.buf.usage()
				mu.Lock()
				peak = max(peak, used)
				mu.Unlock()
			}
			errs <- f.Close(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Soft limit: each of the three writers may pass it by one write.
	if peak > mib+3*(128<<10) {
		t.Errorf("buffer peaked at %d bytes, limit %d", peak, mib)
	}
	if used, sealing := c.buf.usage(); used != 0 || sealing != 0 {
		t.Errorf("after Close the buffer holds %d (%d sealing)", used, sealing)
	}
	for i := range files {
		if got := readAll(t, c, inos[i], mib); !bytes.Equal(got, files[i]) {
			t.Errorf("file %d differs", i)
		}
		if v := fc.layout(inos[i])[0].Version; v < 2 {
			t.Errorf("file %d chunk 0 at v%d: the buffer never forced a partial seal", i, v)
		}
	}
}

// Concurrent WriteAt and ReadAt on one File (as the mount does).
func TestConcurrentWritersOneFile(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	const writers, span = 4, 700_000
	data := randBytes(50, writers*span)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := w * span
			for i := off; i < off+span; i += 50_000 {
				p := data[i:min(i+50_000, off+span)]
				if _, err := f.WriteAt(ctx, p, int64(i)); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(p))
				if _, err := f.ReadAt(ctx, got, int64(i)); err != nil && !errors.Is(err, io.EOF) {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, p) {
					t.Errorf("read-your-write at %d differs", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c, a.Ino, mib); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
}

// A sequential reader is served from readahead: far fewer ReadChunk
// calls than reads.
func TestClosedFile(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := f.WriteAt(ctx, []byte("x"), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("WriteAt after Close = %v, want EBADF", err)
	}
	if _, err := f.ReadAt(ctx, make([]byte, 1), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("ReadAt after Close = %v, want EBADF", err)
	}
	if _, err := c.Open(ctx, RootIno); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Open(dir) = %v, want EISDIR", err)
	}
}

// Client.Close with a file still open and writing: nothing hangs, the
// goroutines stop (TestMain checks), and the file reports the lost data.
func TestClientCloseAbortsOpenFiles(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 2, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	a := createFile(t, c, "f")
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	writeInPieces(t, f, randBytes(80, mib+mib/2), 0, 100_000)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(ctx, []byte("x"), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("WriteAt after Client.Close = %v, want EBADF", err)
	}
	if _, err := c.Open(ctx, a.Ino); !errors.Is(err, syscall.EBADF) && !errors.Is(err, syscall.EIO) {
		t.Errorf("Open after Client.Close = %v", err)
	}
	f.Close(ctx) // must not hang
}

// Buffers of committed writes are reused for later ones (runBufs); a
// read copying buffered writes must never see a buffer refilled under
// it. Writers overwrite whole 1 MiB blocks, each filled with one byte
// that names the block and the pass, while readers read whole blocks:
// every block read must be one byte repeated, and name its own block.
func TestRecycledBuffersStayOutOfReads(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 3, replication: 2, minReplicas: 2, chunkSize: 2 * mib})
	c := fc.client(t, func(cfg *Config) { cfg.WriteBuffer = 8 * mib })
	f := openNew(t, c, "f")
	ctx := context.Background()
	const blocks, passes = 8, 8
	fill := func(block, pass int) byte { return byte(pass*blocks + block + 1) }
	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Go(func() {
			got := make([]byte, mib)
			for i := 0; !stop.Load(); i++ {
				block := (i*3 + r) % blocks
				n, err := f.ReadAt(ctx, got, int64(block)*mib)
				if err != nil && !errors.Is(err, io.EOF) {
					t.Error(err)
					return
				}
				if n == 0 {
					continue
				}
				b := got[0]
				if b != 0 && int(b-1)%blocks != block {
					t.Errorf("block %d reads byte %d, written to block %d", block, b, int(b-1)%blocks)
					return
				}
				if bytes.Count(got[:n], []byte{b}) != n {
					t.Errorf("block %d: not all %d: buffers mixed", block, b)
					return
				}
			}
		})
	}
	for pass := range passes {
		for block := range blocks {
			p := bytes.Repeat([]byte{fill(block, pass)}, mib)
			if _, err := f.WriteAt(ctx, p, int64(block)*mib); err != nil {
				t.Fatal(err)
			}
		}
		if pass%4 == 3 {
			if err := f.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, c, f.ino, mib)
	for block := range blocks {
		if b := got[block*mib]; b != fill(block, passes-1) || bytes.Count(got[block*mib:(block+1)*mib], []byte{b}) != mib {
			t.Fatalf("block %d after the last pass: starts with %d, want all %d", block, b, fill(block, passes-1))
		}
	}
}

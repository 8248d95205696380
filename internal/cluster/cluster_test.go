package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/chunkserver/diskstore"
	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Badger and glog-style loggers start package-level goroutines.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/dgraph-io/ristretto/v2/z.(*AllocatorPool).freeupAllocators"),
	)
}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// put writes data at path, making its parent directories.
func put(t testing.TB, c *client.Client, p string, data []byte) {
	t.Helper()
	if _, err := c.MkdirAll(context.Background(), path.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(context.Background(), bytes.NewReader(data), int64(len(data)), p, nil); err != nil {
		t.Fatalf("put %s: %v", p, err)
	}
}

func get(t testing.TB, c *client.Client, path string) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := c.Get(context.Background(), path, &b, nil); err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	return b.Bytes()
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
	}
}

// A file of several chunks goes in and comes back byte for byte, and every
// chunk sits on three distinct chunkservers.
func TestPutGetRoundTrip(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{ChunkServers: 4, Replication: 3})
	cl := c.Client()
	data := randomData(1, 5<<20+4321) // 6 chunks of 1 MiB, the last short
	put(t, cl, "/a/b/file.bin", data)
	mustEqual(t, "get", get(t, cl, "/a/b/file.bin"), data)

	locs, err := cl.Locate(context.Background(), "/a/b/file.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(locs) != 6 {
		t.Fatalf("%d chunks, want 6", len(locs))
	}
	for _, l := range locs {
		seen := map[string]bool{}
		for _, n := range l.Nodes {
			seen[n.ID] = true
		}
		if len(l.Nodes) != 3 || len(seen) != 3 {
			t.Fatalf("chunk %d is on %v, want 3 distinct nodes", l.Index, l.Nodes)
		}
	}
	if r := c.Fsck(); r.Files != 1 || r.Chunks != 6 || r.Healthy != 6 {
		t.Fatalf("fsck: %+v", r)
	}
}

// kill the manager (no graceful stop) and start it again on the same
// store: the namespace and every file are there.
func TestManagerRestartKeepsNamespace(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{})
	cl := c.Client()
	ctx := context.Background()
	files := map[string][]byte{
		"/x/1":     randomData(2, 100),
		"/x/y/2":   randomData(3, 3<<20),
		"/x/y/z/3": nil,
	}
	for p, d := range files {
		put(t, cl, p, d)
	}
	if _, err := cl.MkdirAll(ctx, "/empty/dir", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := cl.RenamePath(ctx, "/x/1", "/x/one"); err != nil {
		t.Fatal(err)
	}
	files["/x/one"] = files["/x/1"]
	delete(files, "/x/1")

	if err := c.StopManager(true); err != nil {
		t.Fatal(err)
	}
	if err := c.StartManager(); err != nil {
		t.Fatal(err)
	}
	c.WaitLive(3)
	cl = c.Client()
	for p, d := range files {
		mustEqual(t, p, get(t, cl, p), d)
	}
	a, err := cl.Resolve(ctx, "/empty/dir")
	if err != nil || !a.IsDir() || a.Mode&0o777 != 0o700 {
		t.Fatalf("/empty/dir after restart: %+v, %v", a, err)
	}
	if _, err := cl.Resolve(ctx, "/x/1"); err == nil {
		t.Fatal("the old name of a renamed file came back after restart")
	}
	c.Fsck()
}

// A chunkserver restarted on its data directory keeps its node id and its
// chunks, and reports them.
func TestChunkServerRestartKeepsChunks(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{})
	cl := c.Client()
	data := randomData(4, 3<<20)
	put(t, cl, "/f", data)
	ctx := context.Background()
	before, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ChunkServer(0).S.NodeID()

	if err := c.StopChunkServer(0, false); err != nil {
		t.Fatal(err)
	}
	if err := c.StartChunkServer(0); err != nil {
		t.Fatal(err)
	}
	if got := c.ChunkServer(0).S.NodeID(); got != id {
		t.Fatalf("node id %q after restart, want %q", got, id)
	}
	c.WaitLive(3)
	c.WaitFor("the restarted node to report its chunks", func(ctx context.Context) (bool, error) {
		st, err := cl.Status(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.ID == id {
				return n.Chunks == 3 && n.State == "live", nil
			}
		}
		return false, nil
	})
	after, _ := cl.Status(ctx)
	if len(after.Nodes) != len(before.Nodes) {
		t.Fatalf("%d nodes after restart, %d before: the node came back under a new id", len(after.Nodes), len(before.Nodes))
	}
	mustEqual(t, "get after restart", get(t, cl, "/f"), data)
	c.Fsck()
}

// A flipped byte in one replica is caught by its checksum: the read still
// returns the right data from another replica, and the manager is told
// the replica is bad.
func TestCorruptReplicaFailsOver(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Capacity: 1 << 30})
	cl := c.Client()
	data := randomData(5, 2<<20+100)
	put(t, cl, "/f", data)
	ctx := context.Background()
	locs, err := cl.Locate(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	// The reader tries replicas in the manager's order, so damage the first.
	target := locs[1]
	bad := target.Nodes[0]
	idx := -1
	for i := 0; i < c.Size(); i++ {
		if c.ChunkServer(i).S.NodeID() == bad.ID {
			idx = i
		}
	}
	path := diskstore.ReplicaPath(c.ChunkServerDir(idx), chunk.ID(target.ChunkID), target.Version)
	flipByte(t, path, diskstore.DataOffset+12345)

	mustEqual(t, "read with a corrupt replica", get(t, c.Client(), "/f"), data)
	// That read went to the bad replica first if the manager's order
	// (least full first) did not change since Locate; heartbeats can
	// change it. So read the bad replica directly too, until the
	// chunkserver has dropped it: DataLoss while it is there (each such
	// read reports it), then NotFound, or a good copy if the healer has
	// already put one back there. Never the damaged bytes.
	want := data[1<<20 : 2<<20]
	c.WaitFor("the chunkserver to drop the corrupt replica", func(ctx context.Context) (bool, error) {
		got, err := readReplica(t, bad.Addr, target.ChunkID, target.Version)
		switch status.Code(err) {
		case codes.DataLoss:
			return false, nil
		case codes.NotFound:
			return true, nil
		case codes.OK:
			if !bytes.Equal(got, want) {
				return false, fmt.Errorf("the damaged replica on %s served %d bytes that differ from the chunk", bad.Addr, len(got))
			}
			return true, nil
		}
		return false, err
	})
	c.WaitHealthy()
}

// readReplica reads a whole replica from one chunkserver, returning its
// data and the stream's error (nil if all the data arrived).
func readReplica(t *testing.T, addr string, id, version uint64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	st, err := dialChunkServer(t, addr).ReadChunk(ctx, &shoalpb.ReadChunkRequest{ChunkId: id, Version: version, Length: chunk.MaxSize})
	if err != nil {
		return nil, err
	}
	var data []byte
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		data = append(data, r.GetData()...)
	}
}

// Small reads, each one request on a long-lived ReadChunks stream, fail
// over as ReadChunk calls do: a damaged replica refuses the damaged
// block and the client never returns its bytes, and a chunkserver that
// is gone is passed over for the next replica.
func TestSmallReadsFailOver(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Capacity: 1 << 30})
	cl := c.Client()
	data := randomData(6, 8<<20)
	put(t, cl, "/f", data)
	ctx := context.Background()
	locs, err := cl.Locate(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	nodeIndex := func(id string) int {
		for i := 0; i < c.Size(); i++ {
			if s := c.ChunkServer(i); s != nil && s.S.NodeID() == id {
				return i
			}
		}
		t.Fatalf("no chunkserver %s", id)
		return -1
	}
	a, err := cl.Resolve(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	f, err := cl.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	// Reads alternate between chunks 1 and 6, far apart, so that none
	// is taken for a sequential run and served from readahead pages.
	read := func(what string, off int64) {
		t.Helper()
		buf := make([]byte, 4096)
		if _, err := f.ReadAt(ctx, buf, off); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		mustEqual(t, what, buf, data[off:off+int64(len(buf))])
	}

	// The reader tries replicas in the manager's order: damage the
	// first replica of chunk 1 in its second block.
	target, bad := locs[1], locs[1].Nodes[0]
	path := diskstore.ReplicaPath(c.ChunkServerDir(nodeIndex(bad.ID)), chunk.ID(target.ChunkID), target.Version)
	flipByte(t, path, diskstore.DataOffset+70_000)
	if err := readSmall(t, bad.Addr, target.ChunkID, target.Version, 68_000, 4096); status.Code(err) != codes.DataLoss {
		t.Fatalf("a small read of the damaged block on %s: %v, want DataLoss", bad.Addr, err)
	}
	for i, off := range []int64{68_000, 100_000, 65536 - 100} {
		read("small read in the damaged block", 1<<20+off)
		read("small read of chunk 6", 6<<20+int64(i)*300_000)
	}

	// Stop the chunkserver of chunk 6's first replica.
	if err := c.StopChunkServer(nodeIndex(locs[6].Nodes[0].ID), true); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5000, 500_000, 1<<20 - 4096} {
		read("small read in the damaged chunk", 1<<20+off/4)
		read("small read with a chunkserver gone", 6<<20+off)
	}
}

// readSmall reads [off, off+n) of a replica on a ReadChunks stream to
// the chunkserver at addr, returning the error.
func readSmall(t *testing.T, addr string, id, version, off, n uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	st, err := dialChunkServer(t, addr).ReadChunks(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&shoalpb.ReadChunkRequest{ChunkId: id, Version: version, Offset: off, Length: n, Exact: true}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = st.Recv()
	return err
}

// dialChunkServer connects to the chunkserver at addr until the test ends.
func dialChunkServer(t *testing.T, addr string) shoalpb.ChunkServerClient {
	t.Helper()
	conn, err := transport.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return shoalpb.NewChunkServerClient(conn)
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A full cluster refuses a write with ENOSPC, keeps every byte it already
// stored, and keeps serving once space is freed.
func TestFullDisk(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Capacity: 4 << 20})
	cl := c.Client()
	ctx := context.Background()
	kept := randomData(20, 2<<20)
	put(t, cl, "/kept", kept)
	c.WaitHealthy() // usage reported by heartbeats

	big := randomData(21, 8<<20)
	_, err := cl.Put(ctx, bytes.NewReader(big), int64(len(big)), "/big", nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("put of 8 MiB into 4 MiB nodes: %v, want ENOSPC", err)
	}
	t.Logf("the error a user sees: %v", err)
	mustEqual(t, "the file stored before", get(t, cl, "/kept"), kept)

	if err := cl.Remove(ctx, "/big", false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	small := randomData(22, 1<<20)
	c.WaitFor("room for a 1 MiB file again", func(ctx context.Context) (bool, error) {
		_, err := cl.Put(ctx, bytes.NewReader(small), int64(len(small)), "/small", nil)
		return err == nil, err
	})
	mustEqual(t, "a file written after freeing space", get(t, cl, "/small"), small)
	mustEqual(t, "the file stored before, again", get(t, cl, "/kept"), kept)
	c.WaitHealthy()
}

// With every replica of a file unreachable, a read fails with EIO within
// the client's op timeout and says why; it never hangs.
func TestAllReplicasDownEIO(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{})
	cl := c.Client()
	data := randomData(40, 2<<20)
	put(t, cl, "/f", data)
	for i := 0; i < c.Size(); i++ {
		if err := c.StopChunkServer(i, true); err != nil {
			t.Fatal(err)
		}
	}
	cfg := client.DefaultConfig()
	cfg.Manager = c.ManagerAddr()
	cfg.OpTimeout, cfg.RPCTimeout = 2*time.Second, time.Second
	short, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	start := time.Now()
	_, err = short.Get(context.Background(), "/f", io.Discard, nil)
	took := time.Since(start)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with every replica down: %v, want EIO", err)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	if took > 3*cfg.OpTimeout {
		t.Fatalf("the read took %v to fail, op timeout %v", took, cfg.OpTimeout)
	}
}

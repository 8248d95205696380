package cluster_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/internal/cluster"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
	"github.com/shoalfs/shoal/internal/localread"
	"github.com/shoalfs/shoal/internal/testlog"
)

// A chunkserver hands a reader on its host descriptors of a replica's
// file, through which the replica's bytes read as written; it refuses a
// version it does not hold, NotFound, and its socket goes when it stops.
func TestChunkServerHandsOutReplicas(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Capacity: 1 << 30})
	data := randomData(9, 300<<10+5)
	put(t, c.Client(), "/f", data)
	locs, err := c.Client().Locate(context.Background(), "/f")
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[0]
	if loc.Inline || len(loc.Nodes) == 0 {
		t.Fatalf("chunk 0 is not on chunkservers: %+v", loc)
	}
	addr := loc.Nodes[0].Addr
	conn, err := localread.Dial(addr)
	if err != nil {
		t.Fatalf("dial the local socket of %s: %v", addr, err)
	}
	defer conn.Close()
	r, err := localread.Open(conn, loc.ChunkID, loc.Version)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Length != int64(len(data)) {
		t.Fatalf("replica of %d bytes, want %d", r.Length, len(data))
	}
	got := make([]byte, r.Length)
	if _, err := r.File.ReadAt(got, r.DataOffset); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "the replica file's data", got, data)

	_, err = localread.Open(conn, loc.ChunkID, loc.Version+100)
	var lerr *localread.Error
	if !errors.As(err, &lerr) || lerr.Code != codes.NotFound {
		t.Fatalf("open of a version the chunkserver does not hold: %v, want NotFound", err)
	}

	for i := 0; i < c.Size(); i++ {
		if c.ChunkServerAddr(i) == addr {
			if err := c.StopChunkServer(i, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if conn2, err := localread.Dial(addr); err == nil {
		conn2.Close()
		t.Fatal("the local socket answers after its chunkserver stopped")
	}
	// The descriptors still read: a replica version never changes.
	if _, err := r.File.ReadAt(got[:100], r.DataOffset); err != nil {
		t.Fatalf("read through a descriptor after the chunkserver stopped: %v", err)
	}
}

// wrapped hides the disk store's LocalOpener, as a test's wrapping store
// does.
type wrapped struct{ chunkserver.Store }

// A chunkserver whose store does not hand out files answers an open
// Unimplemented, and a client then reads it over TCP.
func TestChunkServerWithoutLocalOpener(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := chunkserver.DefaultConfig()
	cfg.Dir, cfg.Manager = t.TempDir(), "127.0.0.1:1" // no manager: registration retries
	cfg.Log = testlog.New(t)
	cfg.WrapStore = func(s chunkserver.Store) chunkserver.Store { return wrapped{s} }
	cs, err := cluster.StartChunkServer(cfg, lis)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Stop()
	conn, err := localread.Dial(cs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = localread.Open(conn, 1, 1)
	var lerr *localread.Error
	if !errors.As(err, &lerr) || lerr.Code != codes.Unimplemented {
		t.Fatalf("open on a store without LocalOpener: %v, want Unimplemented", err)
	}
}

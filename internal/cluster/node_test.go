package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/internal/testlog"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// A client holding a write stream open and idle must not keep a
// chunkserver from stopping: past the grace period its connection is cut.
func TestStopWithIdleStream(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := chunkserver.DefaultConfig()
	cfg.Manager = "127.0.0.1:1" // never reached; registration retries in the background
	cfg.Dir = t.TempDir()
	cfg.Log = testlog.New(t)
	cs, err := StartChunkServer(cfg, lis)
	if err != nil {
		t.Fatal(err)
	}
	cs.grace = 200 * time.Millisecond

	conn, err := transport.Dial(cs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := shoalpb.NewChunkServerClient(conn).WriteChunk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&shoalpb.WriteChunkRequest{Header: &shoalpb.WriteChunkHeader{ChunkId: 1, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	// Some data too, so the handler is running and waiting for more.
	if err := stream.Send(&shoalpb.WriteChunkRequest{Offset: 0, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- cs.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return with an idle write stream open")
	}
}

package chunkserver

import (
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// peers caches one client connection per peer chunkserver address, for
// forwarding writes and pulling replicas.
type peers struct {
	mu     sync.Mutex // guards conns and closed
	conns  map[string]*grpc.ClientConn
	closed bool
}

func newPeers() *peers { return &peers{conns: make(map[string]*grpc.ClientConn)} }

// dial opens a lazily connecting connection to a peer or the manager,
// with transport's options and gRPC's reconnect backoff capped at 2 s
// (from 120 s): RPCs on a connection in backoff fail at once, so without
// the cap a manager or peer that comes back after a long outage would go
// unused for up to two minutes.
func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, append(transport.DialOptions(), grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: 5 * time.Second,
	}))...)
}

// client returns a ChunkServer client for addr; the connection is made
// lazily and kept until close.
func (p *peers) client(addr string) (shoalpb.ChunkServerClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("chunkserver is shutting down")
	}
	conn, ok := p.conns[addr]
	if !ok {
		var err error
		conn, err = dial(addr)
		if err != nil {
			return nil, err
		}
		p.conns[addr] = conn
	}
	return shoalpb.NewChunkServerClient(conn), nil
}

func (p *peers) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for addr, c := range p.conns {
		errs = append(errs, c.Close())
		delete(p.conns, addr)
	}
	return errors.Join(errs...)
}

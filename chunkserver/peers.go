package chunkserver

import (
	"errors"
	"sync"

	"google.golang.org/grpc"

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

// dial opens a lazily connecting connection to a peer or the manager.
func dial(addr string) (*grpc.ClientConn, error) { return transport.Dial(addr) }

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

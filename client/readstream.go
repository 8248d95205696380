package client

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// maxIdleStreams bounds the idle ReadChunks streams kept per chunkserver;
// more readers at once than that open streams of their own, closed after.
const maxIdleStreams = 16

// chunkConn is the connection to one chunkserver and the ReadChunks
// streams idle on it. Small reads go over these long-lived streams: a
// read takes a stream for itself, sends its request and receives the
// answer, and gives the stream back, so it costs neither a new stream's
// setup on both ends nor a demultiplexer. Idle streams are kept only
// while the connection is ready: when the chunkserver goes away or stops
// (its GOAWAY turns the connection idle), they are closed, so that none
// is left to fail a later read or to hold up a graceful stop.
//
// Beside them it keeps the idle connections of the raw read protocol
// (rawconn.go), which reads use when the chunkserver speaks it. Those
// do not follow the gRPC connection's state, which stays idle while only
// raw reads go to a chunkserver: one that went stale is replaced on its
// next use.
type chunkConn struct {
	addr string
	cc   *grpc.ClientConn
	cs   shoalpb.ChunkServerClient

	mu      sync.Mutex // guards the fields below
	ready   bool       // the connection was ready when last looked at
	idle    []*readStream
	rawIdle []*rawConn
	noRaw   bool // the chunkserver answered that it speaks only gRPC
	shut    bool // the connection is closed: keep nothing idle
}

// readStream is a ReadChunks stream; cancel closes it.
type readStream struct {
	st     shoalpb.ChunkServer_ReadChunksClient
	cancel context.CancelFunc
}

func newChunkConn(addr string, cc *grpc.ClientConn) *chunkConn {
	return &chunkConn{addr: addr, cc: cc, cs: shoalpb.NewChunkServerClient(cc)}
}

// watch follows the connection's state, closing the idle streams
// whenever it is not ready, until the connection is closed; then it
// closes the idle raw connections too.
func (c *chunkConn) watch() {
	for {
		s := c.cc.GetState()
		c.mu.Lock()
		c.ready = s == connectivity.Ready
		var stale []*readStream
		var raw []*rawConn
		if !c.ready {
			stale, c.idle = c.idle, nil
		}
		if s == connectivity.Shutdown {
			c.shut = true
			raw, c.rawIdle = c.rawIdle, nil
		}
		c.mu.Unlock()
		for _, rs := range stale {
			rs.cancel()
		}
		for _, rc := range raw {
			rc.c.Close()
		}
		if s == connectivity.Shutdown {
			return
		}
		c.cc.WaitForStateChange(context.Background(), s)
	}
}

// read answers one request whose blocks fit one message, on a stream of
// its own. A read that fails, or whose ctx ends, closes its stream.
func (c *chunkConn) read(ctx context.Context, req *shoalpb.ReadChunkRequest) (*shoalpb.ReadChunkResponse, error) {
	rs, err := c.take(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, rs.cancel)
	m, err := rs.roundTrip(req)
	if !stop() {
		return nil, ctx.Err() // rs is closed, or closing
	}
	if err != nil {
		rs.cancel()
		return nil, err
	}
	c.put(rs)
	return m, nil
}

// take returns an idle stream, or opens one. ctx, the read's, bounds
// the opening (which may wait for the connection), not the stream.
func (c *chunkConn) take(ctx context.Context) (*readStream, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		rs := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return rs, nil
	}
	c.mu.Unlock()
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	st, err := c.cs.ReadChunks(sctx)
	if !stop() {
		cancel()
		return nil, ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &readStream{st: st, cancel: cancel}, nil
}

// put keeps rs for the next read, or closes it.
func (c *chunkConn) put(rs *readStream) {
	c.mu.Lock()
	keep := c.ready && len(c.idle) < maxIdleStreams
	if keep {
		c.idle = append(c.idle, rs)
	}
	c.mu.Unlock()
	if !keep {
		rs.cancel()
	}
}

// errStreamEnded: a ReadChunks stream ended without answering.
var errStreamEnded = status.Error(codes.Unavailable, "read stream ended without an answer")

func (rs *readStream) roundTrip(req *shoalpb.ReadChunkRequest) (*shoalpb.ReadChunkResponse, error) {
	// Send fails with io.EOF if the stream has ended; Recv says why.
	if err := rs.st.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	m, err := rs.st.Recv()
	if errors.Is(err, io.EOF) {
		return nil, errStreamEnded
	}
	return m, err
}

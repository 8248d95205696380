package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// forwardQueue is how many data messages (up to 1 MiB each) may wait
// between the handler receiving them and the forwarder sending them on.
// Past it the handler waits, which is the backpressure that paces the
// sender to the slowest node of the chain.
const forwardQueue = 8

// forwarder streams one WriteChunk down the chain. It is a goroutine owned
// by the WriteChunk handler: the handler feeds it with send, ends the
// stream cleanly with finish, and always calls stop before it returns.
//
// A nil *forwarder (no chain) accepts every call and does nothing.
type forwarder struct {
	chain  []string
	queue  chan *transport.WriteChunkMsg // nil message: end cleanly
	done   chan struct{}                 // closed when run returns
	closed chan struct{}                 // closed once the clean end is sent
	cancel context.CancelFunc
	closeQ sync.Once

	// Set by run before done is closed.
	resp *shoalpb.WriteChunkResponse
	err  error
}

func (s *Server) forward(ctx context.Context, h *shoalpb.WriteChunkHeader) *forwarder {
	ctx, cancel := context.WithCancel(ctx)
	f := &forwarder{
		chain:  h.Chain,
		queue:  make(chan *transport.WriteChunkMsg, forwardQueue),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
		cancel: cancel,
	}
	next := &shoalpb.WriteChunkHeader{
		ChunkId:     h.ChunkId,
		Version:     h.Version,
		BaseVersion: h.BaseVersion,
		BaseLength:  h.BaseLength,
		Chain:       h.Chain[1:],
		Sync:        h.Sync,
	}
	go func() {
		defer close(f.done)
		f.resp, f.err = f.run(ctx, s.peers, next)
		if f.err != nil && ctx.Err() == nil {
			s.log.WithError(f.err).WithField("next", f.chain[0]).Warn("forwarding a chunk write failed; writing on without it")
		}
	}()
	return f
}

func (f *forwarder) run(ctx context.Context, peers *peers, h *shoalpb.WriteChunkHeader) (*shoalpb.WriteChunkResponse, error) {
	c, err := peers.client(f.chain[0])
	if err != nil {
		return nil, err
	}
	st, err := c.WriteChunk(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&shoalpb.WriteChunkRequest{Header: h}); err != nil {
		return nil, sendError(st, err)
	}
	// Whatever run leaves in the queue when it returns early, stop
	// drains, freeing each message's reference.
	for m := range f.queue {
		if m == nil {
			// Tell finish the end is on its way before waiting for
			// the verdict: the handler starts its own seal only then,
			// so the disk work here does not delay the next node's.
			err := st.CloseSend()
			close(f.closed)
			if err != nil {
				return nil, err
			}
			return st.CloseAndRecv()
		}
		err := st.SendMsg(m) // gRPC takes its own reference while it queues the bytes
		m.Free()
		if err != nil {
			return nil, sendError(st, err)
		}
	}
	// The queue closed without a clean end: the handler failed and ctx is
	// cancelled, so the stream ends as cancelled, never as complete.
	return nil, errors.New("write abandoned upstream")
}

// sendError turns the io.EOF that Send returns on a stream the server
// ended into that server's status.
func sendError(st shoalpb.ChunkServer_WriteChunkClient, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	if _, err := st.CloseAndRecv(); err != nil {
		return err
	}
	return errors.New("the next node ended the stream early")
}

// send queues m for the next node, with a reference of its own (nil:
// the clean end); once the forwarder has failed it drops m and returns at
// once.
func (f *forwarder) send(m *transport.WriteChunkMsg) {
	if f == nil {
		return
	}
	if m != nil {
		m.Ref()
	}
	select {
	case f.queue <- m:
	case <-f.done:
		if m != nil {
			m.Free()
		}
	}
}

// finish ends the stream downstream cleanly, so the next node seals. It
// returns once the end is sent (or the forwarder has failed), so that
// the caller's own seal cannot hold up the next node's.
func (f *forwarder) finish() {
	if f == nil {
		return
	}
	f.send(nil)
	select {
	case <-f.closed:
	case <-f.done:
	}
}

// stop cancels the stream unless it already completed, and waits for the
// forwarder. Idempotent.
func (f *forwarder) stop() {
	if f == nil {
		return
	}
	f.cancel() // before closing the queue: run must not mistake it for a clean end
	f.closeQ.Do(func() { close(f.queue) })
	<-f.done
	for m := range f.queue { // what run did not send
		if m != nil {
			m.Free()
		}
	}
}

// results waits for the downstream response and returns a result per
// chain node, in chain order. Nodes the stream did not reach intact, and
// replicas whose length or summary differ from local, are failed.
func (f *forwarder) results(local ChunkInfo) []*shoalpb.ReplicaResult {
	<-f.done
	err := f.err
	if err == nil {
		switch r := f.resp; {
		case len(r.Replicas) != len(f.chain):
			err = fmt.Errorf("the next node reported %d replicas for a chain of %d", len(r.Replicas), len(f.chain))
		case int64(r.Length) != local.Length || r.Summary != local.Summary:
			err = fmt.Errorf("the next node sealed %d bytes with summary %08x, here %d bytes with %08x",
				r.Length, r.Summary, local.Length, local.Summary)
		default:
			return r.Replicas
		}
	}
	out := make([]*shoalpb.ReplicaResult, len(f.chain))
	for i, addr := range f.chain {
		msg := fmt.Sprintf("forward to %s: %v", f.chain[0], err)
		if i > 0 {
			msg = "not reached: " + msg
		}
		out[i] = &shoalpb.ReplicaResult{Addr: addr, Error: msg}
	}
	return out
}

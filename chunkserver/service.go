package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// maxChain bounds the nodes after this one in a write chain.
const maxChain = 16

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// WriteChunk receives one replica version and forwards it down the chain.
//
// The first message is the header; the rest carry data. Each data message
// is handed to the forwarder (a goroutine owned by this handler, behind a
// bounded queue) and written locally, so the local write and the send to
// the next node overlap. If the next node fails, the local write goes on
// and the response reports that node and every node after it as failed.
// A local failure fails the RPC and cancels the stream downstream.
//
// Only a stream that ends cleanly (the sender's CloseSend) is sealed: a
// broken or cancelled one is discarded here and, through the cancelled
// downstream stream, on every node after.
func (s *Server) WriteChunk(stream shoalpb.ChunkServer_WriteChunkServer) error {
	ctx, end, err := s.begin(stream.Context())
	if err != nil {
		return err
	}
	defer end()
	// Data messages arrive in pooled buffers (transport.WriteChunkMsg):
	// each is freed once written here, and the forwarder holds its own
	// reference until sent on.
	recv := func() (*transport.WriteChunkMsg, error) {
		m := new(transport.WriteChunkMsg)
		if err := stream.RecvMsg(m); err != nil {
			return nil, err
		}
		return m, nil
	}
	first, err := recv()
	if errors.Is(err, io.EOF) {
		err = invalidf("empty write stream")
	}
	if err != nil {
		return s.toStatus(err)
	}
	h := first.Req.GetHeader()
	if err := validateHeader(h); err != nil {
		first.Free()
		return s.toStatus(err)
	}
	id := ChunkID(h.ChunkId)
	// Start the next node first, so that the nodes of the chain create
	// their replicas at the same time rather than one after the other.
	// If the local create fails, stop cancels the stream downstream.
	var fwd *forwarder
	if len(h.Chain) > 0 {
		fwd = s.forward(ctx, h)
		defer fwd.stop()
	}
	w, err := s.store.Create(ctx, id, h.Version, h.BaseVersion, int64(h.BaseLength))
	if err != nil {
		first.Free()
		return s.toStatus(fmt.Errorf("chunk %d version %d: create: %w", id, h.Version, err))
	}
	defer w.Abort() // a no-op once committed
	// write stores m's data and sends it on; it frees m.
	write := func(m *transport.WriteChunkMsg) error {
		defer m.Free()
		r := m.Req
		if err := validateData(r); err != nil {
			return err
		}
		if len(r.Data) == 0 {
			return nil
		}
		fwd.send(m)
		if _, err := w.WriteAt(r.Data, int64(r.Offset)); err != nil {
			return fmt.Errorf("chunk %d version %d: write at %d: %w", id, h.Version, r.Offset, err)
		}
		return nil
	}
	if len(first.Req.Data) > 0 { // data in the header message: allowed
		first.Req = &shoalpb.WriteChunkRequest{Offset: first.Req.Offset, Data: first.Req.Data}
		if err := write(first); err != nil {
			return s.toStatus(err)
		}
	} else {
		first.Free()
	}
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s.toStatus(err)
		}
		if m.Req.Header != nil {
			m.Free()
			return s.toStatus(invalidf("header in a data message"))
		}
		if err := write(m); err != nil {
			return s.toStatus(err)
		}
	}
	fwd.finish() // the next node seals while we do
	info, err := w.Commit(ctx)
	if err != nil {
		return s.toStatus(fmt.Errorf("chunk %d version %d: seal: %w", id, h.Version, err))
	}
	s.reports.added(info)
	if h.Sync {
		if err := s.store.Sync(ctx, id, h.Version); err != nil {
			return s.toStatus(fmt.Errorf("chunk %d version %d: sync: %w", id, h.Version, err))
		}
	}
	results := []*shoalpb.ReplicaResult{{Addr: s.cfg.Advertise, NodeId: s.NodeID(), Ok: true}}
	if fwd != nil {
		results = append(results, fwd.results(info)...)
	}
	return stream.SendAndClose(&shoalpb.WriteChunkResponse{
		Replicas: results,
		Length:   uint64(info.Length),
		Summary:  info.Summary,
	})
}

func validateHeader(h *shoalpb.WriteChunkHeader) error {
	switch {
	case h == nil:
		return invalidf("the first message carries no header")
	case h.Version == 0:
		return invalidf("chunk %d: version 0", h.ChunkId)
	case h.BaseVersion >= h.Version:
		return invalidf("chunk %d: base version %d not below version %d", h.ChunkId, h.BaseVersion, h.Version)
	case h.BaseLength > MaxChunkSize:
		return invalidf("chunk %d: base length %d over the %d maximum", h.ChunkId, h.BaseLength, MaxChunkSize)
	case len(h.Chain) > maxChain:
		return invalidf("chain of %d nodes, at most %d", len(h.Chain), maxChain)
	}
	for _, addr := range h.Chain {
		if addr == "" {
			return invalidf("empty address in the chain")
		}
	}
	return nil
}

func validateData(m *shoalpb.WriteChunkRequest) error {
	n := uint64(len(m.Data))
	switch {
	case n > transport.MaxDataMessage:
		return invalidf("data message of %d bytes, at most %d", n, transport.MaxDataMessage)
	case m.Offset > MaxChunkSize || m.Offset+n > MaxChunkSize:
		return invalidf("data [%d, %d) past the %d-byte chunk maximum", m.Offset, m.Offset+n, MaxChunkSize)
	}
	return nil
}

// ReadChunk streams [offset, offset+length) of a replica, clipped to its
// length, in messages of whole checksum blocks (the last may be short)
// with their stored checksums. Every block is verified as it is read: a
// mismatch ends the stream with DataLoss and a CORRUPT detail, and the
// replica is reported corrupt in the next heartbeat.
func (s *Server) ReadChunk(req *shoalpb.ReadChunkRequest, stream shoalpb.ChunkServer_ReadChunkServer) error {
	ctx, end, err := s.begin(stream.Context())
	if err != nil {
		return err
	}
	defer end()
	r, err := s.resolveRead(ctx, req)
	if err != nil {
		return s.toStatus(err)
	}
	bp := s.getBuf()
	defer s.putBuf(bp)
	var sendErr error
	err = s.eachMessage(ctx, r, *bp, func(m *shoalpb.ReadChunkResponse, _ bool) error {
		// Send marshals data before it returns, so the buffer is free
		// again (no stats handler keeps messages on chunkservers).
		sendErr = stream.Send(m)
		return sendErr
	})
	if err != nil && sendErr == nil {
		return s.toStatus(err)
	}
	return err
}

// eachMessage reads the blocks of r in messages of at most
// transport.MaxDataMessage bytes, into buf, and passes each to send,
// with last set on the last; buf is free again when send returns. It
// stops at the first error, send's or a read's.
func (s *Server) eachMessage(ctx context.Context, r chunkRead, buf []byte, send func(m *shoalpb.ReadChunkResponse, last bool) error) error {
	for pos := r.pos; pos < r.stop; {
		n := min(r.stop-pos, transport.MaxDataMessage)
		msg, err := s.readMessage(ctx, r, pos, buf[:n])
		if err != nil {
			return err
		}
		if err := send(msg, pos+n == r.stop); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// ReadChunks answers each request of the stream, in order, with the
// one message ReadChunk would stream for it; the range's blocks must fit
// one message. A failed read ends the stream with its status, as it ends
// a ReadChunk.
func (s *Server) ReadChunks(stream shoalpb.ChunkServer_ReadChunksServer) error {
	ctx, end, err := s.begin(stream.Context())
	if err != nil {
		return err
	}
	defer end()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.readOne(ctx, req, stream); err != nil {
			return err
		}
	}
}

// readOne answers one request of a ReadChunks stream.
func (s *Server) readOne(ctx context.Context, req *shoalpb.ReadChunkRequest, stream shoalpb.ChunkServer_ReadChunksServer) error {
	r, err := s.resolveRead(ctx, req)
	if err != nil {
		return s.toStatus(err)
	}
	if r.stop-r.pos > transport.MaxDataMessage {
		return s.toStatus(invalidf("chunk %d: [%d, +%d) spans %d bytes of blocks, more than one message holds",
			req.ChunkId, req.Offset, req.Length, r.stop-r.pos))
	}
	if r.pos == r.stop {
		return stream.Send(&shoalpb.ReadChunkResponse{})
	}
	// The buffer is taken per request: an idle stream holds none.
	bp := s.getBuf()
	defer s.putBuf(bp)
	msg, err := s.readMessage(ctx, r, r.pos, (*bp)[:r.stop-r.pos])
	if err != nil {
		return s.toStatus(err)
	}
	// Send marshals data before it returns, so the buffer is free again.
	return stream.Send(msg)
}

// chunkRead is a read request resolved against its replica.
type chunkRead struct {
	req  *shoalpb.ReadChunkRequest
	info ChunkInfo
	// end is the end of the requested range, clipped to the replica;
	// [pos, stop) are the whole blocks around [req.Offset, end), which
	// are read and verified whole. pos == stop when there is nothing
	// to read.
	end, pos, stop uint64
}

// resolveRead checks req and resolves it against its replica.
func (s *Server) resolveRead(ctx context.Context, req *shoalpb.ReadChunkRequest) (chunkRead, error) {
	if req.Version == 0 {
		return chunkRead{}, invalidf("chunk %d: version 0", req.ChunkId)
	}
	id := ChunkID(req.ChunkId)
	info, err := s.store.Stat(ctx, id, req.Version)
	if err != nil {
		s.noteCorrupt(ChunkInfo{ID: id, Version: req.Version}, err)
		return chunkRead{}, err
	}
	r := chunkRead{req: req, info: info}
	length := uint64(info.Length)
	if req.Offset >= length || req.Length == 0 {
		return r, nil
	}
	r.end = length
	if req.Length < length-req.Offset {
		r.end = req.Offset + req.Length
	}
	r.pos = req.Offset / BlockSize * BlockSize
	r.stop = min((r.end+BlockSize-1)/BlockSize*BlockSize, length)
	return r, nil
}

// readMessage reads the whole blocks at pos into buf, verifying each,
// and returns them as a message with their stored checksums, cut down
// to the requested range if the read is exact. The message's data is
// buf's.
func (s *Server) readMessage(ctx context.Context, r chunkRead, pos uint64, buf []byte) (*shoalpb.ReadChunkResponse, error) {
	id, version := ChunkID(r.req.ChunkId), r.req.Version
	crcs, err := s.store.Checksums(ctx, id, version, int(pos/BlockSize), chunk.Blocks(int64(len(buf))))
	if err == nil {
		_, err = s.store.ReadAt(ctx, id, version, buf, int64(pos))
		if errors.Is(err, io.EOF) && pos+uint64(len(buf)) == uint64(r.info.Length) {
			err = nil
		}
	}
	if err != nil {
		s.noteCorrupt(r.info, err)
		return nil, err
	}
	msg := &shoalpb.ReadChunkResponse{Offset: pos, Data: buf, Crcs: crcs}
	if r.req.Exact {
		trimToRange(msg, r.req.Offset, r.end)
	}
	return msg, nil
}

// trimToRange cuts the verified whole blocks of msg down to the bytes in
// [off, end) and records the CRC32C of the bytes cut from its first and
// last block, with which the reader checks the rest against the stored
// checksums (see ReadChunkRequest.exact).
func trimToRange(msg *shoalpb.ReadChunkResponse, off, end uint64) {
	lo := max(off, msg.Offset) - msg.Offset
	hi := min(end, msg.Offset+uint64(len(msg.Data))) - msg.Offset
	msg.HeadCrc = chunk.Checksum(msg.Data[:lo])
	msg.TailCrc = chunk.Checksum(msg.Data[hi:])
	msg.TailLength = uint32(uint64(len(msg.Data)) - hi)
	msg.Offset += lo
	msg.Data = msg.Data[lo:hi]
}

// noteCorrupt queues a replica for the next heartbeat's corrupt list if
// err says it is corrupt.
func (s *Server) noteCorrupt(info ChunkInfo, err error) {
	if errors.Is(err, ErrCorrupt) {
		s.log.WithError(err).Warn("corrupt replica")
		s.reports.corrupt(info)
	}
}

// ReplicateChunks pulls each item from one of its sources, at most
// Config.ReplicateWorkers at a time, and answers with one result per item
// in request order. A failed item does not fail the call.
func (s *Server) ReplicateChunks(ctx context.Context, req *shoalpb.ReplicateChunksRequest) (*shoalpb.ReplicateChunksResponse, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	results := make([]*shoalpb.ReplicateResult, len(req.Items))
	var g errgroup.Group
	g.SetLimit(s.cfg.ReplicateWorkers)
	for i, it := range req.Items {
		g.Go(func() error {
			results[i] = s.replicate(ctx, it)
			return nil
		})
	}
	g.Wait()
	return &shoalpb.ReplicateChunksResponse{Results: results}, nil
}

// DeleteChunks deletes replicas; missing ones are fine. Each is reported
// removed in the next heartbeat.
func (s *Server) DeleteChunks(ctx context.Context, req *shoalpb.DeleteChunksRequest) (*shoalpb.DeleteChunksResponse, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	var errs []error
	for _, c := range req.Chunks {
		if err := s.deleteReplica(ctx, ChunkID(c.ChunkId), c.Version); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, s.toStatus(errs[0])
	}
	return &shoalpb.DeleteChunksResponse{}, nil
}

// deleteReplica deletes (id, version), treating a missing one as deleted,
// and queues the removal for the next heartbeat.
func (s *Server) deleteReplica(ctx context.Context, id ChunkID, version uint64) error {
	err := s.store.Delete(ctx, id, version)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete chunk %d version %d: %w", id, version, err)
	}
	s.reports.removed(id, version)
	return nil
}

// toStatus is the one place where errors become gRPC statuses.
func (s *Server) toStatus(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrCorrupt):
		return withReason(codes.DataLoss, err, shoalpb.ErrorDetail_CORRUPT)
	case errors.Is(err, ErrNoSpace):
		return withReason(codes.ResourceExhausted, err, shoalpb.ErrorDetail_NO_SPACE)
	case errors.Is(err, ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err // a status from a peer or the transport: pass it on
	}
	s.log.WithError(err).Error("internal error")
	return status.Error(codes.Internal, err.Error())
}

func withReason(code codes.Code, err error, reason shoalpb.ErrorDetail_Reason) error {
	st := status.New(code, err.Error())
	if d, derr := st.WithDetails(&shoalpb.ErrorDetail{Reason: reason}); derr == nil {
		st = d
	}
	return st.Err()
}

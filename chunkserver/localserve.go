package chunkserver

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/internal/localread"
)

// ListenLocal listens on the socket of short-circuit reads (package
// localread) for this chunkserver's advertised address, for ServeLocal.
// Without it (another process holds the name, or this is not Linux) it
// logs why and returns nil: readers on this host then go over the
// network, as remote readers do.
func (s *Server) ListenLocal() *net.UnixListener {
	lis, err := localread.Listen(s.cfg.Advertise)
	if err != nil {
		s.log.WithError(err).Warn("short-circuit reads off: readers on this host go over the network")
		return nil
	}
	return lis
}

// ServeLocal answers short-circuit opens (package localread) on lis
// until ctx ends, then closes lis and every connection and waits for
// their handlers. A store that is not a LocalOpener answers every open
// Unimplemented, and its readers go over the network.
func (s *Server) ServeLocal(ctx context.Context, lis *net.UnixListener) {
	var (
		mu     sync.Mutex
		conns  = map[*net.UnixConn]struct{}{}
		closed bool
		wg     sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for c := range conns {
			c.Close()
		}
	})
	defer stop()
	for {
		conn, err := lis.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil {
				s.log.WithError(err).Warn("short-circuit reads: accept failed; reads go over the network")
			}
			break
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			conn.Close()
			break
		}
		conns[conn] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveLocalConn(conn)
			mu.Lock()
			delete(conns, conn)
			mu.Unlock()
			conn.Close()
		}()
	}
	lis.Close()
	stop()
	mu.Lock()
	closed = true
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
}

// serveLocalConn answers the opens of one connection until it ends or
// breaks the protocol.
func (s *Server) serveLocalConn(conn *net.UnixConn) {
	for {
		id, version, err := localread.ReadRequest(conn)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.WithError(err).Warn("short-circuit reads: closing a connection")
			}
			return
		}
		if err := s.answerLocal(conn, ChunkID(id), version); err != nil {
			return
		}
	}
}

// answerLocal opens replica (id, version) and sends its descriptors, or
// why it cannot.
func (s *Server) answerLocal(conn *net.UnixConn, id ChunkID, version uint64) error {
	ctx, end, err := s.begin(context.Background())
	if err != nil {
		return err // closing
	}
	defer end()
	lo, ok := s.store.(LocalOpener)
	if !ok {
		return localread.WriteError(conn, codes.Unimplemented, "this chunkserver's store does not hand out its files")
	}
	if version == 0 {
		return localread.WriteError(conn, codes.InvalidArgument, "version 0")
	}
	r, err := lo.OpenLocal(ctx, id, version)
	if err != nil {
		s.noteCorrupt(ChunkInfo{ID: id, Version: version}, err)
		st := status.Convert(s.toStatus(err))
		return localread.WriteError(conn, st.Code(), st.Message())
	}
	defer r.Close() // the reader has its own descriptors once they are sent
	return localread.WriteReply(conn, r)
}

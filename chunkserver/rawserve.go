package chunkserver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/shoalfs/shoal/internal/rawread"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// rawWriteTimeout bounds the sending of one frame to a raw reader: a
// reader that stops reading loses its connection, not a handler forever.
const rawWriteTimeout = time.Minute

// ServeRaw answers reads on conn, a connection of the raw read protocol
// (package rawread) whose opening Magic has been read, until the reader
// closes it, it fails, or the server closes. Each read is what ReadChunk
// answers, as frames; a failed read is answered with an error frame
// and the connection goes on, a malformed request ends it. The caller
// closes conn.
func (s *Server) ServeRaw(conn net.Conn) {
	if _, err := io.WriteString(conn, rawread.Magic); err != nil {
		return
	}
	br := bufio.NewReaderSize(conn, 4<<10)
	var req [rawread.RequestSize]byte
	var scratch []byte
	for {
		if _, err := io.ReadFull(br, req[:]); err != nil {
			return // the reader is done, or gone
		}
		r, err := rawread.ParseRequest(req[:])
		if err != nil {
			s.log.WithError(err).WithField("peer", conn.RemoteAddr()).Warn("raw read: closing the connection")
			return
		}
		if !s.serveRawRead(conn, r, &scratch) {
			return
		}
	}
}

// serveRawRead answers one read on conn, reporting whether the
// connection is still good for the next.
func (s *Server) serveRawRead(conn net.Conn, req rawread.Request, scratch *[]byte) bool {
	ctx, end, err := s.begin(context.Background())
	if err != nil {
		return false // closing
	}
	defer end()
	var sendErr error
	send := func(m *shoalpb.ReadChunkResponse, last bool) error {
		*scratch = rawread.AppendFrame((*scratch)[:0], m, last)
		conn.SetWriteDeadline(time.Now().Add(rawWriteTimeout))
		bufs := net.Buffers{*scratch, m.GetData()}
		_, sendErr = bufs.WriteTo(conn) // one writev
		return sendErr
	}
	r, err := s.resolveRead(ctx, req.Proto())
	if err == nil {
		if r.pos == r.stop {
			err = send(&shoalpb.ReadChunkResponse{}, true)
		} else {
			bp := s.getBuf()
			err = s.eachMessage(ctx, r, *bp, send)
			s.putBuf(bp)
		}
	}
	if sendErr != nil || err == nil {
		return sendErr == nil
	}
	*scratch = rawread.AppendError((*scratch)[:0], s.toStatus(err))
	conn.SetWriteDeadline(time.Now().Add(rawWriteTimeout))
	_, werr := conn.Write(*scratch)
	return werr == nil && !errors.Is(err, context.Canceled)
}

package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// replicate copies one replica here from the first of its sources that
// delivers it intact. A replica already here counts as copied (0 bytes):
// repeating a replication is harmless.
func (s *Server) replicate(ctx context.Context, it *shoalpb.ReplicateItem) *shoalpb.ReplicateResult {
	res := &shoalpb.ReplicateResult{ChunkId: it.ChunkId, Version: it.Version}
	id := ChunkID(it.ChunkId)
	log := s.log.WithField("chunk", it.ChunkId).WithField("version", it.Version)
	switch {
	case it.Version == 0:
		res.Error = "version 0"
		return res
	case it.Length > MaxChunkSize:
		res.Error = fmt.Sprintf("length %d over the %d maximum", it.Length, MaxChunkSize)
		return res
	case len(it.Sources) == 0:
		res.Error = "no sources"
		return res
	}
	if _, err := s.store.Stat(ctx, id, it.Version); err == nil {
		res.Ok = true
		return res
	}
	var errs []string
	for _, src := range it.Sources {
		n, err := s.pull(ctx, id, it.Version, it.Length, src, it.RateLimit)
		if err == nil {
			log.WithField("from", src).WithField("bytes", n).Debug("replica copied")
			res.Ok, res.Bytes = true, uint64(n)
			return res
		}
		errs = append(errs, fmt.Sprintf("from %s: %v", src, err))
		if ctx.Err() != nil || errors.Is(err, ErrNoSpace) || errors.Is(err, ErrExists) {
			break // another source would not help
		}
	}
	res.Error = strings.Join(errs, "; ")
	log.WithField("error", res.Error).Warn("replication failed")
	return res
}

// pull copies replica (id, version) from the chunkserver at src, checking
// every block against the checksum the source stored, and seals it. If
// length is not 0 the replica must have exactly that many bytes.
func (s *Server) pull(ctx context.Context, id ChunkID, version, length uint64, src string, rate uint64) (int64, error) {
	w, err := s.store.Create(ctx, id, version, 0, 0)
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	c, err := s.peers.client(src)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.ReadChunk(ctx, &shoalpb.ReadChunkRequest{ChunkId: uint64(id), Version: version, Length: MaxChunkSize})
	if err != nil {
		return 0, err
	}
	thr := newThrottle(int64(rate))
	var pos uint64
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if m.Offset != pos {
			return 0, fmt.Errorf("source sent offset %d, expected %d", m.Offset, pos)
		}
		if err := verifyMessage(m); err != nil {
			return 0, err
		}
		if _, err := w.WriteAt(m.Data, int64(pos)); err != nil {
			return 0, err
		}
		pos += uint64(len(m.Data))
		if err := thr.wait(ctx, len(m.Data)); err != nil {
			return 0, err
		}
	}
	if length != 0 && pos != length {
		return 0, fmt.Errorf("source has %d bytes, expected %d", pos, length)
	}
	info, err := w.Commit(ctx)
	if err != nil {
		return 0, err
	}
	s.reports.added(info)
	// A repair copy is durable before the healer counts it: nobody
	// fsyncs it later.
	if err := s.store.Sync(ctx, info.ID, info.Version); err != nil {
		return 0, err
	}
	return info.Length, nil
}

// verifyMessage checks a ReadChunk message: block-aligned, whole blocks
// but the last, and every block matching its checksum.
func verifyMessage(m *shoalpb.ReadChunkResponse) error {
	n := len(m.Data)
	switch {
	case n > transport.MaxDataMessage:
		return fmt.Errorf("source sent a %d-byte message: %w", n, ErrInvalid)
	case m.Offset%BlockSize != 0:
		return fmt.Errorf("source sent unaligned offset %d: %w", m.Offset, ErrInvalid)
	case len(m.Crcs) != chunk.Blocks(int64(n)):
		return fmt.Errorf("source sent %d checksums for %d bytes: %w", len(m.Crcs), n, ErrInvalid)
	}
	for i, want := range m.Crcs {
		b := m.Data[i*BlockSize : min((i+1)*BlockSize, n)]
		if got := chunk.Checksum(b); got != want {
			return fmt.Errorf("block at %d from the source: checksum %08x, sent %08x: %w",
				m.Offset+uint64(i*BlockSize), got, want, ErrCorrupt)
		}
	}
	return nil
}

package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shoalfs/shoal/chunkserver/chunk"
)

// scrubLoop verifies every replica every Config.ScrubInterval, the first
// time one interval after Run starts (not at once: a restart should not
// start with a disk-wide read).
func (s *Server) scrubLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ScrubInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			start := time.Now()
			checked, bad, err := s.scrub(ctx)
			log := s.log.WithField("replicas", checked).WithField("corrupt", bad).WithField("took", time.Since(start).Round(time.Millisecond))
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				log.WithError(err).Warn("scrub failed")
			case bad > 0:
				log.Warn("scrub found corrupt replicas")
			default:
				log.Debug("scrub done")
			}
		}
	}
}

// scrub reads every replica through the store, which verifies each block,
// at most Config.ScrubRate bytes per second. Corrupt replicas are queued
// for the next heartbeat.
func (s *Server) scrub(ctx context.Context) (checked, bad int, err error) {
	var infos []ChunkInfo
	err = s.store.Walk(ctx, func(info ChunkInfo, err error) error {
		if err != nil {
			s.noteCorrupt(info, err)
			bad++
			return nil
		}
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return 0, bad, err
	}
	thr := newThrottle(s.cfg.ScrubRate)
	bp := s.getBuf()
	defer s.putBuf(bp)
	for _, info := range infos {
		err := s.verify(ctx, info, *bp, thr)
		switch {
		case ctx.Err() != nil:
			return checked, bad, ctx.Err()
		case errors.Is(err, ErrNotFound):
			continue // deleted since the walk
		case errors.Is(err, ErrCorrupt):
			s.noteCorrupt(info, err)
			bad++
		case err != nil:
			return checked, bad, err
		}
		checked++
	}
	return checked, bad, nil
}

// verify reads one replica whole and checks its checksum table against
// its summary.
func (s *Server) verify(ctx context.Context, info ChunkInfo, buf []byte, thr *throttle) error {
	crcs, err := s.store.Checksums(ctx, info.ID, info.Version, 0, chunk.Blocks(info.Length))
	if err != nil {
		return err
	}
	if got := chunk.Summary(crcs); got != info.Summary {
		return fmt.Errorf("chunk %d version %d: checksums sum to %08x, summary %08x: %w", info.ID, info.Version, got, info.Summary, ErrCorrupt)
	}
	for off := int64(0); off < info.Length; off += int64(len(buf)) {
		n, err := s.store.ReadAt(ctx, info.ID, info.Version, buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if err := thr.wait(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

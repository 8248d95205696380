package chunkserver

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	shoalpb "github.com/shoalfs/shoal/proto"
)

const (
	// maxSyncRefs bounds the replicas one SyncChunks call may name.
	maxSyncRefs = 4096
	// syncParallel is how many replicas one SyncChunks call fsyncs at
	// once: the disk and the filesystem's journal batch concurrent
	// fsyncs, which one at a time would each wait for.
	syncParallel = 8
)

// SyncChunks fsyncs sealed replicas, so that they survive a crash of
// this machine. A chunk write without its sync flag seals a replica
// without that; a client's fsync(2) comes here for what it wrote that
// way. Each chunk gets its own result: a missing replica or a failed
// fsync does not stop the others.
func (s *Server) SyncChunks(ctx context.Context, req *shoalpb.SyncChunksRequest) (*shoalpb.SyncChunksResponse, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if n := len(req.GetChunks()); n > maxSyncRefs {
		return nil, s.toStatus(invalidf("%d chunks in one sync, at most %d", n, maxSyncRefs))
	}
	errs := make([]string, len(req.GetChunks()))
	var g errgroup.Group
	g.SetLimit(syncParallel)
	for i, c := range req.GetChunks() {
		g.Go(func() error {
			if err := s.store.Sync(ctx, ChunkID(c.GetChunkId()), c.GetVersion()); err != nil {
				errs[i] = fmt.Sprintf("chunk %d version %d: %v", c.GetChunkId(), c.GetVersion(), err)
			}
			return nil
		})
	}
	g.Wait()
	return &shoalpb.SyncChunksResponse{Errors: errs}, nil
}

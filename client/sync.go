package client

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// maxSyncBatch is how many replicas one SyncChunks call names (the
// chunkserver takes up to 4096).
const maxSyncBatch = 1024

// Sync flushes the file (see Flush), then makes it durable: every chunk
// of the file is fsynced on at least the manager's minimum of replicas
// (or on all of its replicas, if it has fewer), and the manager's log is
// fsynced. When it returns nil, everything written before the call
// survives a crash of every machine in the cluster. The first Sync of a
// File covers the whole file, including what earlier opens wrote and
// closed; later ones cover what this File committed since.
func (f *File) Sync(ctx context.Context) error {
	if err := f.Flush(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	needLayout := !f.syncedAll && !f.layoutOK // the whole file is to sync
	f.mu.Unlock()
	if needLayout {
		if _, err := f.fetchLayout(ctx); err != nil {
			return err
		}
	}
	f.mu.Lock()
	all := !f.syncedAll
	chunks := f.unsynced
	if all {
		chunks = slices.Collect(maps.Values(f.layout))
	}
	f.unsynced = nil
	f.mu.Unlock()

	err := f.c.syncChunks(ctx, chunks)
	if err == nil {
		err = f.c.SyncMetadata(ctx)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if !all {
			f.unsynced = append(chunks, f.unsynced...) // the next Sync tries again
		}
		return opErr("fsync", inoPath(f.ino), err)
	}
	if all {
		f.syncedAll = true
	}
	return nil
}

// SyncMetadata makes every namespace change acknowledged so far durable
// on the manager's disk (fsync of a directory).
func (c *Client) SyncMetadata(ctx context.Context) error {
	return c.do(ctx, "sync", "", func(ctx context.Context) error {
		_, err := c.mgr.Sync(ctx, &shoalpb.SyncRequest{})
		return err
	})
}

// syncChunks fsyncs chunks on their replicas, each chunkserver in one
// call per batch, all at once. A chunk needs min(its replicas, the
// manager's min_replicas) of them synced; a replica that is unreachable
// or missing does not count.
func (c *Client) syncChunks(ctx context.Context, chunks []*chunkLoc) error {
	byNode := make(map[string][]*chunkLoc)
	for _, l := range chunks {
		for _, r := range l.replicas {
			byNode[r.addr] = append(byNode[r.addr], l)
		}
	}
	var (
		mu     sync.Mutex // guards synced and why
		synced = make(map[*chunkLoc]int, len(chunks))
		why    []string
	)
	var g errgroup.Group
	for addr, locs := range byNode {
		for lo := 0; lo < len(locs); lo += maxSyncBatch {
			batch := locs[lo:min(lo+maxSyncBatch, len(locs))]
			g.Go(func() error {
				errs, err := c.syncOn(ctx, addr, batch)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					why = append(why, fmt.Sprintf("%s: %v", addr, err))
					return nil
				}
				for i, l := range batch {
					if errs[i] == "" {
						synced[l]++
					} else {
						why = append(why, fmt.Sprintf("%s: %s", addr, errs[i]))
					}
				}
				return nil
			})
		}
	}
	g.Wait()
	need := int(c.minReplicas.Load())
	for _, l := range chunks {
		if l.inline != nil {
			continue // in the manager's log, which Sync covers
		}
		want := max(min(len(l.replicas), need), 1)
		if synced[l] < want {
			return fmt.Errorf("%w: chunk %d version %d on disk on %d of %d replicas, need %d: %s",
				syscall.EIO, l.chunkID, l.version, synced[l], len(l.replicas), want, strings.Join(why, "; "))
		}
	}
	return nil
}

// syncOn asks one chunkserver to fsync locs, returning its per-chunk
// errors (empty: synced).
func (c *Client) syncOn(ctx context.Context, addr string, locs []*chunkLoc) ([]string, error) {
	cs, err := c.pool.get(addr)
	if err != nil {
		return nil, err
	}
	req := &shoalpb.SyncChunksRequest{Chunks: make([]*shoalpb.ChunkRef, len(locs))}
	for i, l := range locs {
		req.Chunks[i] = &shoalpb.ChunkRef{ChunkId: l.chunkID, Version: l.version}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	resp, err := cs.SyncChunks(ctx, req)
	if err != nil {
		return nil, fromStatus(err)
	}
	if len(resp.GetErrors()) != len(locs) {
		return nil, fmt.Errorf("%d results for %d chunks", len(resp.GetErrors()), len(locs))
	}
	return resp.GetErrors(), nil
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/shoalfs/shoal/healer"
	"github.com/shoalfs/shoal/internal/transport"
	"github.com/shoalfs/shoal/metadata"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// This file wires the healer to the manager: the manager's Snapshot is
// the healer's Inventory, and chunkserver RPCs plus the manager's delete
// queue are its Replicator.

// inventory adapts the manager to healer.Inventory.
type inventory struct{ m *metadata.Manager }

// View turns the manager's snapshot into the healer's picture, listing
// only chunks that may need work so that a pass over a large, healthy
// namespace stays cheap. Chunks with a write in flight are left alone
// until it commits.
func (inv inventory) View(ctx context.Context) (healer.View, error) {
	snap, err := inv.m.Snapshot(ctx)
	if err != nil {
		return healer.View{}, err
	}
	v := healer.View{SafeMode: snap.SafeMode, Nodes: make([]healer.Node, 0, len(snap.Nodes))}
	state := make(map[string]healer.NodeState, len(snap.Nodes))
	for _, n := range snap.Nodes {
		s := healer.Dead
		switch n.State {
		case metadata.NodeLive:
			s = healer.Live
		case metadata.NodeDraining, metadata.NodeDrained:
			s = healer.Draining
		}
		state[n.ID] = s
		v.Nodes = append(v.Nodes, healer.Node{ID: n.ID, Addr: n.Addr, Rack: n.Rack, State: s,
			UsedBytes: int64(n.Used), CapacityBytes: int64(n.Capacity)})
	}
	for _, c := range snap.Chunks {
		if c.Writing || !needsWork(c, state) {
			continue
		}
		hc := healer.Chunk{ID: uint64(c.Chunk), Version: c.Version, Length: int64(c.Length), Wanted: c.Wanted, Holders: c.Holders}
		for _, r := range c.Stale {
			hc.Stale = append(hc.Stale, healer.Replica{Node: r.Node, Version: r.Version})
		}
		v.Chunks = append(v.Chunks, hc)
	}
	for _, o := range snap.Orphans {
		v.Orphans = append(v.Orphans, healer.Orphan{Node: o.Node, ChunkID: uint64(o.Chunk), Version: o.Version})
	}
	return v, nil
}

// needsWork reports whether a chunk is anything but exactly Wanted
// replicas on live nodes with nothing stale.
func needsWork(c metadata.ChunkState, state map[string]healer.NodeState) bool {
	if len(c.Stale) > 0 || len(c.Holders) != c.Wanted {
		return true
	}
	for _, h := range c.Holders {
		if state[h] != healer.Live {
			return true
		}
	}
	return false
}

// replicator adapts chunkserver RPCs and the manager's delete queue to
// healer.Replicator. It owns one connection per chunkserver address.
type replicator struct {
	m *metadata.Manager

	mu     sync.Mutex // guards conns and closed
	conns  map[string]*grpc.ClientConn
	closed bool
}

func newReplicator(m *metadata.Manager) *replicator {
	return &replicator{m: m, conns: make(map[string]*grpc.ClientConn)}
}

// Replicate has `to` pull the chunk from the sources and verify it. The
// manager learns of the new replica from to's next heartbeat.
func (r *replicator) Replicate(ctx context.Context, c healer.Chunk, from []healer.Node, to healer.Node) error {
	conn, err := r.conn(to.Addr)
	if err != nil {
		return err
	}
	item := &shoalpb.ReplicateItem{ChunkId: c.ID, Version: c.Version, Length: uint64(c.Length)}
	for _, n := range from {
		item.Sources = append(item.Sources, n.Addr)
	}
	resp, err := shoalpb.NewChunkServerClient(conn).ReplicateChunks(ctx, &shoalpb.ReplicateChunksRequest{Items: []*shoalpb.ReplicateItem{item}})
	if err != nil {
		return fmt.Errorf("replicate chunk %d v%d to %s: %w", c.ID, c.Version, to.Addr, err)
	}
	for _, res := range resp.GetResults() {
		if !res.GetOk() {
			return fmt.Errorf("replicate chunk %d v%d to %s: %s", c.ID, c.Version, to.Addr, res.GetError())
		}
	}
	return nil
}

// Delete queues the deletion for the node's next heartbeat.
func (r *replicator) Delete(_ context.Context, node string, chunkID, version uint64) error {
	return r.m.QueueDelete(node, metadata.ChunkID(chunkID), version)
}

func (r *replicator) conn(addr string) (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("replicator closed")
	}
	if c, ok := r.conns[addr]; ok {
		return c, nil
	}
	c, err := transport.Dial(addr)
	if err != nil {
		return nil, err
	}
	r.conns[addr] = c
	return c, nil
}

// Close closes every connection. Call it after the healer has stopped.
func (r *replicator) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for _, c := range r.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

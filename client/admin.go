package client

import (
	"context"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// Status returns the cluster's nodes, capacity and chunk health.
func (c *Client) Status(ctx context.Context) (StatusReport, error) {
	var resp *shoalpb.StatusResponse
	err := c.do(ctx, "status", "", func(ctx context.Context) (err error) {
		resp, err = c.mgr.Status(ctx, &shoalpb.StatusRequest{})
		return err
	})
	if err != nil {
		return StatusReport{}, err
	}
	return statusFromPB(resp), nil
}

// Fsck checks the chunks of the files under the absolute path p ("" or
// "/" for everything).
func (c *Client) Fsck(ctx context.Context, p string) (FsckReport, error) {
	var ino uint64
	if p != "" && p != "/" {
		a, err := c.Resolve(ctx, p)
		if err != nil {
			return FsckReport{}, err
		}
		ino = uint64(a.Ino)
	}
	var resp *shoalpb.FsckResponse
	err := c.do(ctx, "fsck", p, func(ctx context.Context) (err error) {
		resp, err = c.mgr.Fsck(ctx, &shoalpb.FsckRequest{Ino: ino})
		return err
	})
	if err != nil {
		return FsckReport{}, err
	}
	return fsckFromPB(resp), nil
}

// Decommission drains the chunkserver node (its id or address): the
// manager moves its replicas elsewhere and marks it drained.
func (c *Client) Decommission(ctx context.Context, node string) error {
	return c.do(ctx, "decommission", node, func(ctx context.Context) error {
		_, err := c.mgr.Decommission(ctx, &shoalpb.DecommissionRequest{Node: node})
		return err
	})
}

// ChunkLocation is where one chunk of a file is stored.
type ChunkLocation struct {
	Index   uint64 // which chunk of the file
	ChunkID uint64
	Version uint64
	Length  int64
	// Nodes are the live chunkservers holding this version.
	Nodes []NodeLocation
	// Inline says the manager keeps the chunk's bytes in its records (a
	// small file's chunk 0): ChunkID and Version are 0, and Nodes empty.
	Inline bool
}

// NodeLocation is one chunkserver holding a replica.
type NodeLocation struct {
	ID, Addr string
}

// Locate returns where each chunk of the file at the absolute path p is
// stored, in chunk order.
func (c *Client) Locate(ctx context.Context, p string) ([]ChunkLocation, error) {
	a, err := c.Resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	var resp *shoalpb.GetLayoutResponse
	err = c.do(ctx, "locate", p, func(ctx context.Context) (err error) {
		resp, err = c.mgr.GetLayout(ctx, &shoalpb.GetLayoutRequest{Ino: uint64(a.Ino)})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]ChunkLocation, 0, len(resp.GetChunks()))
	for _, ch := range resp.GetChunks() {
		l := chunkLocFromPB(ch)
		cl := ChunkLocation{Index: l.index, ChunkID: l.chunkID, Version: l.version, Length: l.length, Inline: l.inline != nil}
		for _, r := range l.replicas {
			cl.Nodes = append(cl.Nodes, NodeLocation{ID: r.nodeID, Addr: r.addr})
		}
		out = append(out, cl)
	}
	return out, nil
}

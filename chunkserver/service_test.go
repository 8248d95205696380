package chunkserver_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/chunkserver/diskstore"
	"github.com/shoalfs/shoal/chunkserver/storetest"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

func TestChainWrite(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 3)
	ctx := t.Context()
	data := storetest.Data(1, 5<<20+12345)
	resp, err := writeChunk(ctx, nodes[0].client, header(7, 1, nodes[1:]...), patch{0, data})
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.Info(7, 1, data)
	if int64(resp.Length) != want.Length || resp.Summary != want.Summary {
		t.Fatalf("response length %d summary %08x, want %d %08x", resp.Length, resp.Summary, want.Length, want.Summary)
	}
	if len(resp.Replicas) != 3 {
		t.Fatalf("%d replica results, want 3", len(resp.Replicas))
	}
	for i, r := range resp.Replicas {
		if !r.Ok || r.Addr != nodes[i].addr || r.NodeId != nodes[i].srv.NodeID() {
			t.Fatalf("replica %d: %+v, want ok from %s (%s)", i, r, nodes[i].addr, nodes[i].srv.NodeID())
		}
	}
	for i, n := range nodes {
		got, err := readChunk(ctx, n.client, 7, 1, 0, uint64(len(data)))
		if err != nil {
			t.Fatalf("read from node %d: %v", i, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("node %d: data differs", i)
		}
		waitFor(t, "added report from node", func() bool { return m.reported(n.srv.NodeID(), 7, 1, added) })
	}
	// Ranged reads come back widened to whole blocks and clipped.
	for _, c := range []struct{ off, n uint64 }{
		{100_000, 300_000}, {0, 1}, {uint64(len(data)) - 10, 100}, {chunk.BlockSize, 2 * chunk.BlockSize},
	} {
		got, err := readChunk(ctx, nodes[2].client, 7, 1, c.off, c.n)
		if err != nil {
			t.Fatal(err)
		}
		lo := c.off / chunk.BlockSize * chunk.BlockSize
		hi := min((c.off+c.n+chunk.BlockSize-1)/chunk.BlockSize*chunk.BlockSize, uint64(len(data)))
		if !bytes.Equal(got, data[lo:hi]) {
			t.Fatalf("read [%d,+%d): got %d bytes, want [%d,%d)", c.off, c.n, len(got), lo, hi)
		}
	}
	if got, err := readChunk(ctx, nodes[0].client, 7, 1, uint64(len(data)), 10); err != nil || len(got) != 0 {
		t.Fatalf("read past the end: %d bytes, %v", len(got), err)
	}
}

// Chunkservers receive data into pooled buffers and forward them down
// the chain by reference (transport.WriteChunkMsg). Many chains at once,
// through the same nodes in every order, must each seal exactly their
// own bytes on every node: a buffer reused before the forwarder sent it
// would put one chunk's bytes in another.
func TestConcurrentChainsKeepTheirBytes(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 3)
	ctx := t.Context()
	orders := [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {1, 0, 2}, {2, 1, 0}}
	var wg sync.WaitGroup
	datas := make([][]byte, len(orders))
	for i, o := range orders {
		datas[i] = storetest.Data(uint64(100+i), 4<<20+i*4097)
		wg.Go(func() {
			h := header(chunkserver.ChunkID(100+i), 1, nodes[o[1]], nodes[o[2]])
			if _, err := writeChunk(ctx, nodes[o[0]].client, h, patch{0, datas[i]}); err != nil {
				t.Errorf("chain %v: %v", o, err)
			}
		})
	}
	wg.Wait()
	for i := range orders {
		for k, n := range nodes {
			got, err := readChunk(ctx, n.client, chunkserver.ChunkID(100+i), 1, 0, uint64(len(datas[i])))
			if err != nil {
				t.Fatalf("chunk %d on node %d: %v", 100+i, k, err)
			}
			if !bytes.Equal(got, datas[i]) {
				t.Fatalf("chunk %d on node %d: %d bytes that differ from the %d written", 100+i, k, len(got), len(datas[i]))
			}
		}
	}
}

func TestPatchBuildsNewVersion(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 3)
	ctx := t.Context()
	v1 := storetest.Data(1, 3<<20+100)
	if _, err := writeChunk(ctx, nodes[0].client, header(9, 1, nodes[1:]...), patch{0, v1}); err != nil {
		t.Fatal(err)
	}
	baseLen := 1<<20 + 7
	p1, p2 := storetest.Data(2, 50), storetest.Data(3, 70_000)
	h := header(9, 2, nodes[1:]...)
	h.BaseVersion, h.BaseLength = 1, uint64(baseLen)
	resp, err := writeChunk(ctx, nodes[0].client, h, patch{100, p1}, patch{2<<20 + 3, p2})
	if err != nil {
		t.Fatal(err)
	}
	// v2 = v1 cut to baseLen, zero-extended up to the second patch.
	want := make([]byte, 2<<20+3+len(p2))
	copy(want, v1[:baseLen])
	copy(want[100:], p1)
	copy(want[2<<20+3:], p2)
	if info := storetest.Info(9, 2, want); int64(resp.Length) != info.Length || resp.Summary != info.Summary {
		t.Fatalf("v2: length %d summary %08x, want %d %08x", resp.Length, resp.Summary, info.Length, info.Summary)
	}
	for i, n := range nodes {
		if !resp.Replicas[i].Ok {
			t.Fatalf("replica %d failed: %s", i, resp.Replicas[i].Error)
		}
		for _, c := range []struct {
			v    uint64
			want []byte
		}{{2, want}, {1, v1}} {
			got, err := readChunk(ctx, n.client, 9, c.v, 0, chunk.MaxSize)
			if err != nil {
				t.Fatalf("node %d v%d: %v", i, c.v, err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("node %d v%d: data differs", i, c.v)
			}
		}
	}
}

func TestDownstreamFailure(t *testing.T) {
	cases := []struct {
		name string
		down int  // index of the node that goes away
		mid  bool // during the write rather than before
		ok   []bool
	}{
		{"last node down before", 2, false, []bool{true, true, false}},
		{"middle node down before", 1, false, []bool{true, false, false}},
		{"last node down mid-write", 2, true, []bool{true, true, false}},
		{"middle node down mid-write", 1, true, []bool{true, false, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := startManager(t)
			// The node that goes down mid-write signals its first local write.
			writing := make(chan struct{})
			var once sync.Once
			nodes := startNodes(t, m, 2)
			nodes = append(nodes[:c.down], append([]*node{startNode(t, m.addr, faultyStore(storetest.Rule{Ops: []storetest.OpKind{storetest.OpWrite},
				Match: func(storetest.Op) bool { once.Do(func() { close(writing) }); return false }}))}, nodes[c.down:]...)...)
			down := nodes[c.down]
			if !c.mid {
				down.stop()
			}
			data := storetest.Data(5, 6<<20)
			ctx := t.Context()
			st, err := nodes[0].client.WriteChunk(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&shoalpb.WriteChunkRequest{Header: header(3, 1, nodes[1:]...)}); err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(data); off += transport.MaxDataMessage {
				if c.mid && off == len(data)/2 {
					<-writing // data has reached the node: now it dies
					down.stop()
				}
				if err := st.Send(&shoalpb.WriteChunkRequest{Offset: uint64(off), Data: data[off : off+transport.MaxDataMessage]}); err != nil {
					t.Fatalf("send at %d: %v", off, err)
				}
			}
			resp, err := st.CloseAndRecv()
			if err != nil {
				t.Fatalf("write with node %d down: %v", c.down, err)
			}
			for i, r := range resp.Replicas {
				if r.Ok != c.ok[i] || r.Addr != nodes[i].addr {
					t.Fatalf("replica %d: %+v, want ok=%v at %s", i, r, c.ok[i], nodes[i].addr)
				}
			}
			for i, n := range nodes {
				if !c.ok[i] {
					if names := files(t, n); len(names) != 0 {
						t.Fatalf("failed node %d kept files %v", i, names)
					}
					continue
				}
				got, err := readChunk(ctx, n.client, 3, 1, 0, chunk.MaxSize)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("node %d: read back %d bytes, %v", i, len(got), err)
				}
			}
		})
	}
}

func TestCorruptReplica(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 2)
	ctx := t.Context()
	data := storetest.Data(1, 3<<20)
	if _, err := writeChunk(ctx, nodes[0].client, header(4, 1, nodes[1]), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, nodes[1], 4, 1, 1<<20+5)

	_, err := readChunk(ctx, nodes[1].client, 4, 1, 0, chunk.MaxSize)
	wantCode(t, "read of the damaged replica", err, codes.DataLoss, shoalpb.ErrorDetail_CORRUPT)
	// The blocks before the damage were served; the good replica reads whole.
	if got, err := readChunk(ctx, nodes[1].client, 4, 1, 0, 1<<20); err != nil || !bytes.Equal(got, data[:1<<20]) {
		t.Fatalf("read of the undamaged range: %v", err)
	}
	if got, err := readChunk(ctx, nodes[0].client, 4, 1, 0, chunk.MaxSize); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read of the good replica: %v", err)
	}
	waitFor(t, "corrupt report", func() bool { return m.reported(nodes[1].srv.NodeID(), 4, 1, corrupt) })
	if m.reported(nodes[0].srv.NodeID(), 4, 1, corrupt) {
		t.Fatal("the good replica was reported corrupt")
	}
}

func TestScrubberReportsCorruption(t *testing.T) {
	m := startManager(t)
	n := startNode(t, m.addr, func(c *chunkserver.Config) { c.ScrubInterval = 20 * time.Millisecond })
	waitFor(t, "registration", func() bool { return n.srv.NodeID() != "" })
	ctx := t.Context()
	for id := chunkserver.ChunkID(1); id <= 3; id++ {
		if _, err := writeChunk(ctx, n.client, header(id, 1), patch{0, storetest.Data(uint64(id), 200_000)}); err != nil {
			t.Fatal(err)
		}
	}
	flipByte(t, n, 2, 1, 150_000)
	waitFor(t, "scrubber's corrupt report", func() bool { return m.reported(n.srv.NodeID(), 2, 1, corrupt) })
	for _, id := range []chunkserver.ChunkID{1, 3} {
		if m.reported(n.srv.NodeID(), id, 1, corrupt) {
			t.Fatalf("good chunk %d reported corrupt", id)
		}
	}
}

func TestReplicateChunks(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 3)
	ctx := t.Context()
	src1, src2, dst := nodes[0], nodes[1], nodes[2]
	const items = 6
	var req shoalpb.ReplicateChunksRequest
	for i := 1; i <= items; i++ {
		id := chunkserver.ChunkID(i)
		data := storetest.Data(uint64(i), i*700_000)
		for _, n := range []*node{src1, src2} {
			if _, err := writeChunk(ctx, n.client, header(id, 1), patch{0, data}); err != nil {
				t.Fatal(err)
			}
		}
		req.Items = append(req.Items, &shoalpb.ReplicateItem{ChunkId: uint64(i), Version: 1, Length: uint64(len(data)),
			Sources: []string{src1.addr, src2.addr}, RateLimit: 1 << 30})
	}
	// src1's copy of chunk 2 is damaged: dst must fall back to src2.
	flipByte(t, src1, 2, 1, 1000)
	// A chunk no source has, and one dst already has.
	req.Items = append(req.Items,
		&shoalpb.ReplicateItem{ChunkId: 99, Version: 1, Sources: []string{src1.addr, src2.addr}},
		&shoalpb.ReplicateItem{ChunkId: 1, Version: 1, Sources: []string{src1.addr}})
	resp, err := dst.client.ReplicateChunks(ctx, &req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != len(req.Items) {
		t.Fatalf("%d results for %d items", len(resp.Results), len(req.Items))
	}
	for i, r := range resp.Results[:items] {
		if !r.Ok || r.ChunkId != uint64(i+1) {
			t.Fatalf("item %d: %+v", i, r)
		}
		if id := chunkserver.ChunkID(r.ChunkId); id != 1 && r.Bytes != uint64(id)*700_000 {
			t.Fatalf("item %d copied %d bytes", i, r.Bytes)
		}
		data := storetest.Data(r.ChunkId, int(r.ChunkId)*700_000)
		if got, err := readChunk(ctx, dst.client, chunkserver.ChunkID(r.ChunkId), 1, 0, chunk.MaxSize); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("chunk %d on dst: %v", r.ChunkId, err)
		}
		waitFor(t, "added report", func() bool { return m.reported(dst.srv.NodeID(), chunkserver.ChunkID(r.ChunkId), 1, added) })
	}
	if r := resp.Results[items]; r.Ok || r.Error == "" {
		t.Fatalf("chunk no source has: %+v, want a failure", r)
	}
	if r := resp.Results[items+1]; !r.Ok {
		t.Fatalf("chunk already there: %+v, want ok", r)
	}
	waitFor(t, "corrupt report from the damaged source", func() bool { return m.reported(src1.srv.NodeID(), 2, 1, corrupt) })
}

func TestDeleteChunks(t *testing.T) {
	m := startManager(t)
	n := startNodes(t, m, 1)[0]
	ctx := t.Context()
	if _, err := writeChunk(ctx, n.client, header(5, 1), patch{0, storetest.Data(1, 1000)}); err != nil {
		t.Fatal(err)
	}
	_, err := n.client.DeleteChunks(ctx, &shoalpb.DeleteChunksRequest{Chunks: []*shoalpb.ChunkReport{
		{ChunkId: 5, Version: 1}, {ChunkId: 6, Version: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = readChunk(ctx, n.client, 5, 1, 0, 10)
	wantCode(t, "read of a deleted replica", err, codes.NotFound, 0)
	if names := files(t, n); len(names) != 0 {
		t.Fatalf("files left: %v", names)
	}
	waitFor(t, "removed report", func() bool { return m.reported(n.srv.NodeID(), 5, 1, removed) })
}

func TestCapacityExhausted(t *testing.T) {
	m := startManager(t)
	n := startNodes(t, m, 1, func(c *chunkserver.Config) { c.Capacity = 3 << 20 })[0]
	ctx := t.Context()
	_, err := writeChunk(ctx, n.client, header(1, 1), patch{0, storetest.Data(1, 4<<20)})
	wantCode(t, "write past the capacity", err, codes.ResourceExhausted, shoalpb.ErrorDetail_NO_SPACE)
	if names := files(t, n); len(names) != 0 {
		t.Fatalf("files left after ErrNoSpace: %v", names)
	}
	data := storetest.Data(2, 1<<20)
	if _, err := writeChunk(ctx, n.client, header(2, 1), patch{0, data}); err != nil {
		t.Fatalf("write after ErrNoSpace: %v", err)
	}
	if got, err := readChunk(ctx, n.client, 2, 1, 0, chunk.MaxSize); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after ErrNoSpace: %v", err)
	}
}

func TestMalformedRequests(t *testing.T) {
	m := startManager(t)
	n := startNodes(t, m, 1)[0]
	ctx := t.Context()
	if _, err := writeChunk(ctx, n.client, header(1, 1), patch{0, []byte("x")}); err != nil {
		t.Fatal(err)
	}
	send := func(msgs ...*shoalpb.WriteChunkRequest) error {
		st, err := n.client.WriteChunk(ctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := st.Send(m); err != nil {
				break
			}
		}
		_, err = st.CloseAndRecv()
		return err
	}
	hdr := func(id, v, base uint64) *shoalpb.WriteChunkRequest {
		return &shoalpb.WriteChunkRequest{Header: &shoalpb.WriteChunkHeader{ChunkId: id, Version: v, BaseVersion: base}}
	}
	cases := []struct {
		name string
		msgs []*shoalpb.WriteChunkRequest
		code codes.Code
	}{
		{"empty stream", nil, codes.InvalidArgument},
		{"no header", []*shoalpb.WriteChunkRequest{{Data: []byte("x")}}, codes.InvalidArgument},
		{"version 0", []*shoalpb.WriteChunkRequest{hdr(2, 0, 0)}, codes.InvalidArgument},
		{"base not older", []*shoalpb.WriteChunkRequest{hdr(2, 2, 3)}, codes.InvalidArgument},
		{"oversized message", []*shoalpb.WriteChunkRequest{hdr(2, 1, 0), {Data: make([]byte, transport.MaxDataMessage+1)}}, codes.InvalidArgument},
		{"past the max chunk size", []*shoalpb.WriteChunkRequest{hdr(2, 1, 0), {Offset: chunk.MaxSize, Data: []byte("x")}}, codes.InvalidArgument},
		{"header twice", []*shoalpb.WriteChunkRequest{hdr(2, 1, 0), hdr(2, 1, 0)}, codes.InvalidArgument},
		{"existing replica", []*shoalpb.WriteChunkRequest{hdr(1, 1, 0)}, codes.AlreadyExists},
		{"missing base", []*shoalpb.WriteChunkRequest{hdr(2, 3, 2)}, codes.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, c.name, send(c.msgs...), c.code, 0)
		})
	}
	_, err := readChunk(ctx, n.client, 1, 0, 0, 1)
	wantCode(t, "read of version 0", err, codes.InvalidArgument, 0)
	_, err = readChunk(ctx, n.client, 2, 1, 0, 1)
	wantCode(t, "read of a missing replica", err, codes.NotFound, 0)
	if names := files(t, n); len(names) != 1 || hasTemp(names) {
		t.Fatalf("files after the bad writes: %v, want only chunk 1", names)
	}
	if _, err := diskstore.Open(n.dir, diskstore.Options{}); err == nil {
		t.Fatal("the data directory is not locked while the chunkserver runs")
	}
}

// faultyStore wraps a node's store with rules.
func faultyStore(rules ...storetest.Rule) func(*chunkserver.Config) {
	return func(c *chunkserver.Config) {
		c.WrapStore = func(s chunkserver.Store) chunkserver.Store { return storetest.Faulty(s, rules...) }
	}
}

func TestCancelledWriteSealsNothing(t *testing.T) {
	m := startManager(t)
	writing := make(chan struct{})
	var once sync.Once
	last := startNode(t, m.addr, faultyStore(storetest.Rule{Ops: []storetest.OpKind{storetest.OpWrite},
		Match: func(storetest.Op) bool { once.Do(func() { close(writing) }); return false }}))
	nodes := append(startNodes(t, m, 2), last)
	ctx, cancel := context.WithCancel(t.Context())
	st, err := nodes[0].client.WriteChunk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := storetest.Data(1, 2<<20)
	if err := st.Send(&shoalpb.WriteChunkRequest{Header: header(1, 1, nodes[1:]...)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&shoalpb.WriteChunkRequest{Data: data[:1<<20]}); err != nil {
		t.Fatal(err)
	}
	<-writing // the data reached the end of the chain
	cancel()
	for i, n := range nodes {
		waitFor(t, "no files on the node", func() bool { return len(files(t, n)) == 0 })
		// The name is free again once the cancelled write has let go of
		// it: a full write succeeds.
		var err error
		waitFor(t, "the name to be free", func() bool {
			_, err = writeChunk(t.Context(), n.client, header(1, 1), patch{0, data})
			return status.Code(err) != codes.AlreadyExists
		})
		if err != nil {
			t.Fatalf("node %d: rewrite after the cancelled write: %v", i, err)
		}
	}
}

func TestMiddleNodeFailsLocally(t *testing.T) {
	m := startManager(t)
	first := startNodes(t, m, 1)[0]
	middle := startNodes(t, m, 1, faultyStore(storetest.Rule{Ops: []storetest.OpKind{storetest.OpWrite}, Skip: 2, Err: chunkserver.ErrNoSpace}))[0]
	last := startNodes(t, m, 1)[0]
	data := storetest.Data(1, 5<<20)
	resp, err := writeChunk(t.Context(), first.client, header(2, 1, middle, last), patch{0, data})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, false} {
		if resp.Replicas[i].Ok != want {
			t.Fatalf("replica %d: %+v, want ok=%v", i, resp.Replicas[i], want)
		}
	}
	if !strings.Contains(resp.Replicas[1].Error, "ResourceExhausted") {
		t.Fatalf("middle node's error %q does not say ResourceExhausted", resp.Replicas[1].Error)
	}
	for _, n := range []*node{middle, last} {
		waitFor(t, "no files on the failed nodes", func() bool { return len(files(t, n)) == 0 })
	}
	if got, err := readChunk(t.Context(), first.client, 2, 1, 0, chunk.MaxSize); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("first node: %v", err)
	}
}

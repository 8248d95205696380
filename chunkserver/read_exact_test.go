package chunkserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/chunkserver/storetest"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// An exact read returns just the requested bytes, with the stored
// checksum of every block they touch and the checksums of the bytes of
// those blocks left out, so that the reader can still verify them.
func TestReadChunkExact(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 1)
	ctx := t.Context()
	data := storetest.Data(2, 3<<20+12345)
	if _, err := writeChunk(ctx, nodes[0].client, header(9, 1), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	size := uint64(len(data))
	blockEnd := func(pos uint64) uint64 { return min(pos/chunk.BlockSize*chunk.BlockSize+chunk.BlockSize, size) }
	for _, c := range []struct{ off, n uint64 }{
		{4096, 4096}, {0, 1}, {chunk.BlockSize - 1, 2}, {100_000, 2 << 20}, {chunk.BlockSize, chunk.BlockSize},
		{size - 10, 100}, {5, size}, {0, size},
	} {
		st, err := nodes[0].client.ReadChunk(ctx, &shoalpb.ReadChunkRequest{ChunkId: 9, Version: 1, Offset: c.off, Length: c.n, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		end := min(c.off+c.n, size)
		var got []byte
		for {
			msg, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("[%d,+%d): %v", c.off, c.n, err)
			}
			mo, me := msg.Offset, msg.Offset+uint64(len(msg.Data))
			if mo != c.off+uint64(len(got)) || !bytes.Equal(msg.Data, data[mo:me]) {
				t.Fatalf("[%d,+%d): message [%d,%d) out of place or wrong", c.off, c.n, mo, me)
			}
			lo, hi := mo/chunk.BlockSize*chunk.BlockSize, blockEnd(me-1)
			if msg.HeadCrc != chunk.Checksum(data[lo:mo]) || msg.TailCrc != chunk.Checksum(data[me:hi]) || uint64(msg.TailLength) != hi-me {
				t.Fatalf("[%d,+%d): message [%d,%d): head crc %08x, tail crc %08x of %d bytes; want the blocks' [%d,%d) and [%d,%d)",
					c.off, c.n, mo, me, msg.HeadCrc, msg.TailCrc, msg.TailLength, lo, mo, me, hi)
			}
			if len(msg.Crcs) != chunk.Blocks(int64(hi-lo)) {
				t.Fatalf("[%d,+%d): %d checksums for the blocks of [%d,%d)", c.off, c.n, len(msg.Crcs), lo, hi)
			}
			for i, crc := range msg.Crcs {
				b := lo + uint64(i)*chunk.BlockSize
				if crc != chunk.Checksum(data[b:blockEnd(b)]) {
					t.Fatalf("[%d,+%d): checksum %d is not the stored one", c.off, c.n, i)
				}
			}
			got = append(got, msg.Data...)
		}
		if !bytes.Equal(got, data[c.off:end]) {
			t.Fatalf("[%d,+%d): got %d bytes, want %d", c.off, c.n, len(got), end-c.off)
		}
	}
}

// The chunkserver verifies whole blocks on an exact read too: damage in
// the block outside the requested bytes fails the read.
func TestReadChunkExactVerifiesWholeBlocks(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 1)
	ctx := t.Context()
	data := storetest.Data(3, 1<<20)
	if _, err := writeChunk(ctx, nodes[0].client, header(5, 1), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, nodes[0], 5, 1, 2*chunk.BlockSize+60_000)
	st, err := nodes[0].client.ReadChunk(ctx, &shoalpb.ReadChunkRequest{ChunkId: 5, Version: 1, Offset: 2*chunk.BlockSize + 4096, Length: 4096, Exact: true})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, "exact read of a damaged block", err, codes.DataLoss, shoalpb.ErrorDetail_CORRUPT)
}

// ReadChunks answers each request on one stream with the one message
// ReadChunk streams for a range whose blocks fit one message, and an
// empty one past the end. A range whose blocks would take more, or a
// failed read, ends the stream with the status ReadChunk would end with.
func TestReadChunks(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 1)
	ctx := t.Context()
	c := nodes[0].client
	data := storetest.Data(4, 3<<20+12345)
	if _, err := writeChunk(ctx, c, header(9, 1), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	size := uint64(len(data))
	st, err := c.ReadChunks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ off, n uint64 }{
		{4096, 4096}, {0, 1}, {chunk.BlockSize - 1, 2}, {100_000, 256 << 10}, {chunk.BlockSize, transport.MaxDataMessage},
		{size - 10, 100}, {size - 10, 10},
	} {
		for _, exact := range []bool{true, false} {
			req := &shoalpb.ReadChunkRequest{ChunkId: 9, Version: 1, Offset: r.off, Length: r.n, Exact: exact}
			if err := st.Send(req); err != nil {
				t.Fatal(err)
			}
			got, err := st.Recv()
			if err != nil {
				t.Fatalf("[%d,+%d) exact %v: %v", r.off, r.n, exact, err)
			}
			want, err := readOneMessage(ctx, c, req)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("[%d,+%d) exact %v: ReadChunks answers [%d,+%d), ReadChunk [%d,+%d)",
					r.off, r.n, exact, got.Offset, len(got.Data), want.Offset, len(want.Data))
			}
		}
	}
	for _, r := range []struct{ off, n uint64 }{{size, 10}, {size + 5, 10}, {0, 0}} {
		if err := st.Send(&shoalpb.ReadChunkRequest{ChunkId: 9, Version: 1, Offset: r.off, Length: r.n, Exact: true}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Recv()
		if err != nil || len(got.Data) != 0 || len(got.Crcs) != 0 {
			t.Fatalf("[%d,+%d), nothing to read: %d bytes, %d checksums, %v; want an empty message", r.off, r.n, len(got.GetData()), len(got.GetCrcs()), err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend: %v, want the stream to end", err)
	}

	for _, tc := range []struct {
		what string
		req  *shoalpb.ReadChunkRequest
		code codes.Code
	}{
		{"a range of 17 blocks", &shoalpb.ReadChunkRequest{ChunkId: 9, Version: 1, Offset: 1, Length: transport.MaxDataMessage}, codes.InvalidArgument},
		{"a range over 1 MiB", &shoalpb.ReadChunkRequest{ChunkId: 9, Version: 1, Length: transport.MaxDataMessage + 1}, codes.InvalidArgument},
		{"version 0", &shoalpb.ReadChunkRequest{ChunkId: 9, Version: 0, Length: 1}, codes.InvalidArgument},
		{"a missing replica", &shoalpb.ReadChunkRequest{ChunkId: 10, Version: 1, Length: 1}, codes.NotFound},
	} {
		_, err := readChunks(ctx, c, tc.req)
		wantCode(t, tc.what, err, tc.code, 0)
	}
}

// ReadChunks verifies what it reads: damage anywhere in a block a
// request touches ends the stream with DataLoss, and the replica is
// reported.
func TestReadChunksCorrupt(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 1)
	ctx := t.Context()
	c := nodes[0].client
	data := storetest.Data(5, 1<<20)
	if _, err := writeChunk(ctx, c, header(5, 1), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, nodes[0], 5, 1, 2*chunk.BlockSize+60_000)
	good := &shoalpb.ReadChunkRequest{ChunkId: 5, Version: 1, Offset: 4096, Length: 4096, Exact: true}
	for _, exact := range []bool{true, false} {
		bad := &shoalpb.ReadChunkRequest{ChunkId: 5, Version: 1, Offset: 2*chunk.BlockSize + 4096, Length: 4096, Exact: exact}
		msgs, err := readChunks(ctx, c, good, bad)
		if len(msgs) != 1 || !bytes.Equal(msgs[0].Data, data[4096:8192]) {
			t.Fatalf("the read before the damaged block: %d answers", len(msgs))
		}
		wantCode(t, fmt.Sprintf("a read (exact %v) of a damaged block", exact), err, codes.DataLoss, shoalpb.ErrorDetail_CORRUPT)
	}
	waitFor(t, "corrupt report", func() bool { return m.reported(nodes[0].srv.NodeID(), 5, 1, corrupt) })
}

// readChunks sends reqs on one ReadChunks stream and returns the answers
// up to the first error.
func readChunks(ctx context.Context, c shoalpb.ChunkServerClient, reqs ...*shoalpb.ReadChunkRequest) ([]*shoalpb.ReadChunkResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.ReadChunks(ctx)
	if err != nil {
		return nil, err
	}
	var out []*shoalpb.ReadChunkResponse
	for _, req := range reqs {
		if err := st.Send(req); err != nil && !errors.Is(err, io.EOF) {
			return out, err
		}
		m, err := st.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// readOneMessage returns the one message ReadChunk streams for req.
func readOneMessage(ctx context.Context, c shoalpb.ChunkServerClient, req *shoalpb.ReadChunkRequest) (*shoalpb.ReadChunkResponse, error) {
	st, err := c.ReadChunk(ctx, req)
	if err != nil {
		return nil, err
	}
	m, err := st.Recv()
	if err != nil {
		return nil, err
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("ReadChunk streams more than one message (%v)", err)
	}
	return m, nil
}

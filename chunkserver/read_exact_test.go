package chunkserver_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/chunkserver/storetest"
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

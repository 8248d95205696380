package client

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// verifyBlocks checks whole blocks from the start of a chunk, the case
// TestVerifyBlocks covers.
func verifyBlocks(data []byte, crcs []uint32) error {
	return verifyMessage(&shoalpb.ReadChunkResponse{Data: data, Crcs: crcs})
}

func TestCRC32Combine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 3*blockSize)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := func(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }
	for _, split := range []int{0, 1, 7, 4096, blockSize - 1, blockSize, 2*blockSize + 3, len(data)} {
		for _, end := range []int{split, split + 1, len(data)} {
			if end > len(data) {
				continue
			}
			a, b := data[:split], data[split:end]
			if got, want := crc32Combine(sum(a), sum(b), int64(len(b))), sum(data[:end]); got != want {
				t.Errorf("combine at %d of %d bytes: %08x, want %08x", split, end, got, want)
			}
		}
	}
}

// exactMessage cuts the whole blocks of chunk around [off, end) down to
// that range, as a chunkserver answers an exact ReadChunk.
func exactMessage(chunk []byte, off, end int) *shoalpb.ReadChunkResponse {
	lo := off / blockSize * blockSize
	hi := min((end+blockSize-1)/blockSize*blockSize, len(chunk))
	m := &shoalpb.ReadChunkResponse{
		Offset:     uint64(off),
		Data:       bytes.Clone(chunk[off:end]),
		HeadCrc:    crc32.Checksum(chunk[lo:off], castagnoli),
		TailCrc:    crc32.Checksum(chunk[end:hi], castagnoli),
		TailLength: uint32(hi - end),
	}
	for b := lo; b < hi; b += blockSize {
		m.Crcs = append(m.Crcs, crc32.Checksum(chunk[b:min(b+blockSize, hi)], castagnoli))
	}
	return m
}

func TestVerifyMessageExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	chunk := make([]byte, 3*blockSize+1000)
	for i := range chunk {
		chunk[i] = byte(rng.Uint32())
	}
	ranges := [][2]int{
		{0, 4096}, {4096, 8192}, {blockSize - 4096, blockSize}, {blockSize - 10, blockSize + 10},
		{5, 3*blockSize + 1000}, {3 * blockSize, 3*blockSize + 1000}, {3*blockSize + 1, 3*blockSize + 2},
		{0, 3*blockSize + 1000}, {blockSize, 2 * blockSize},
	}
	for range 50 {
		off := rng.IntN(len(chunk))
		ranges = append(ranges, [2]int{off, off + 1 + rng.IntN(len(chunk)-off)})
	}
	for _, r := range ranges {
		m := exactMessage(chunk, r[0], r[1])
		if err := verifyMessage(m); err != nil {
			t.Fatalf("[%d, %d): %v", r[0], r[1], err)
		}
		// (The offset is not covered: a CRC does not depend on where its
		// bytes are, in whole-block messages either.)
		corrupt := []struct {
			name string
			mod  func(m *shoalpb.ReadChunkResponse)
		}{
			{"first byte", func(m *shoalpb.ReadChunkResponse) { m.Data[0] ^= 1 }},
			{"last byte", func(m *shoalpb.ReadChunkResponse) { m.Data[len(m.Data)-1] ^= 0x80 }},
			{"head crc", func(m *shoalpb.ReadChunkResponse) { m.HeadCrc ^= 4 }},
			{"tail crc", func(m *shoalpb.ReadChunkResponse) { m.TailCrc ^= 4 }},
			{"tail length", func(m *shoalpb.ReadChunkResponse) { m.TailLength++ }},
			{"short data", func(m *shoalpb.ReadChunkResponse) { m.Data = m.Data[:len(m.Data)-1] }},
			{"stored crc", func(m *shoalpb.ReadChunkResponse) { m.Crcs[len(m.Crcs)-1] ^= 1 }},
		}
		for _, c := range corrupt {
			bad := exactMessage(chunk, r[0], r[1])
			c.mod(bad)
			if err := verifyMessage(bad); !errors.Is(err, ErrChecksum) {
				t.Errorf("[%d, %d) with a bad %s: err = %v, want ErrChecksum", r[0], r[1], c.name, err)
			}
		}
	}
}

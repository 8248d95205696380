package chunkserver_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/storetest"
	shoalpb "github.com/shoalfs/shoal/proto"
)

const benchChunk = 64 << 20

// benchWrite writes 64 MiB chunks to nodes[0] with the rest as its chain,
// deleting each after it is written (untimed) to bound disk use.
func benchWrite(b *testing.B, nodes []*node) {
	data := storetest.Data(1, benchChunk)
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := chunkserver.ChunkID(i + 1)
		resp, err := writeChunk(b.Context(), nodes[0].client, header(id, 1, nodes[1:]...), patch{0, data})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range resp.Replicas {
			if !r.Ok {
				b.Fatalf("replica at %s failed: %s", r.Addr, r.Error)
			}
		}
		b.StopTimer()
		for _, n := range nodes {
			if _, err := n.client.DeleteChunks(b.Context(), &shoalpb.DeleteChunksRequest{Chunks: []*shoalpb.ChunkReport{{ChunkId: uint64(id), Version: 1}}}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}

// BenchmarkWriteChain is the HDFS pipeline: a 64 MiB chunk streamed to the
// first of three chunkservers, forwarded down the chain, sealed on all.
func BenchmarkWriteChain(b *testing.B) {
	benchWrite(b, startNodes(b, startManager(b), 3))
}

// BenchmarkWriteSingle is one chunkserver, no chain.
func BenchmarkWriteSingle(b *testing.B) {
	benchWrite(b, startNodes(b, startManager(b), 1))
}

// BenchmarkRead streams a 64 MiB chunk from one chunkserver, verifying
// every block on the server and again in the reader.
func BenchmarkRead(b *testing.B) {
	n := startNodes(b, startManager(b), 1)[0]
	if _, err := writeChunk(b.Context(), n.client, header(1, 1), patch{0, storetest.Data(1, benchChunk)}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := readChunk(b.Context(), n.client, 1, 1, 0, benchChunk)
		if err != nil || len(got) != benchChunk {
			b.Fatalf("read %d bytes: %v", len(got), err)
		}
	}
}

// BenchmarkLocalDiskBaseline is what the disk does without shoal: the same
// 64 MiB written to a plain file in 1 MiB writes, then fsynced.
func BenchmarkLocalDiskBaseline(b *testing.B) {
	data := storetest.Data(1, benchChunk)
	dir := b.TempDir()
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		path := filepath.Join(dir, "baseline")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := f.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.StopTimer()
		os.Remove(path)
		b.StartTimer()
	}
}

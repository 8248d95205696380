package cluster_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// Throughput through the Go client on a real in-process cluster
// (manager + 3 chunkservers on 127.0.0.1, replication 3, 64 MiB chunks),
// beside the same run's local-disk write (write + fsync) as the ceiling:
//
//	go test -run '^$' -bench 'Put|Get|LocalDisk' ./internal/cluster/

const benchFile = 256 << 20

func BenchmarkPut(b *testing.B) {
	c := clustertest.New(b, clustertest.Options{ChunkSize: 64 << 20})
	cl := c.Client()
	data := randomData(30, benchFile)
	ctx := context.Background()
	b.SetBytes(benchFile)
	b.ResetTimer()
	for i := range b.N {
		// Put's Close returns once every chunk is sealed on its
		// replicas and committed: the time includes durability.
		if _, err := cl.Put(ctx, bytes.NewReader(data), benchFile, "/f"+string(rune('a'+i%26)), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	c := clustertest.New(b, clustertest.Options{ChunkSize: 64 << 20})
	cl := c.Client()
	put(b, cl, "/f", randomData(31, benchFile))
	ctx := context.Background()
	b.SetBytes(benchFile)
	b.ResetTimer()
	for range b.N {
		n, err := cl.Get(ctx, "/f", io.Discard, nil)
		if err != nil || n != benchFile {
			b.Fatalf("get: %d bytes, %v", n, err)
		}
	}
}

// BenchmarkLocalDiskWrite is the ceiling: the same bytes written to one
// local file and fsynced (shoal writes each byte three times, to one disk
// here).
func BenchmarkLocalDiskWrite(b *testing.B) {
	data := randomData(32, benchFile)
	dir := b.TempDir()
	b.SetBytes(benchFile)
	b.ResetTimer()
	for range b.N {
		f, err := os.Create(filepath.Join(dir, "f"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

package metadata

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// benchManager opens a manager on a real on-disk Badger (SyncWrites on),
// with a silent logger.
func benchManager(b *testing.B) *Manager {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	return openManager(b, cfg)
}

// BenchmarkCreate measures concurrent creates in one directory: each is a
// durable transaction; Badger's group commit shares fsyncs between them.
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	m := benchManager(b)
	d := mustCreate(b, m, RootIno, "d", ModeDir|0o755)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := fmt.Sprintf("f%09d", n.Add(1))
			if _, err := m.Create(ctx, d.Ino, name, CreateArgs{Mode: 0o644, Exclusive: true}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	m := benchManager(b)
	const files = 10000
	for i := 0; i < files; i++ {
		mustCreate(b, m, RootIno, fmt.Sprintf("f%05d", i), 0o644)
	}
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := fmt.Sprintf("f%05d", n.Add(1)%files)
			if _, err := m.Lookup(ctx, RootIno, name); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCommit measures AllocateChunk + CommitChunks of new chunks, each
// writer appending to its own file.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	m := benchManager(b)
	registerNodes(b, m, 3, 3)
	var files atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		f := mustCreate(b, m, RootIno, fmt.Sprintf("w%d", files.Add(1)), 0o644)
		for i := uint64(0); pb.Next(); i++ {
			al, err := m.AllocateChunk(ctx, f.Ino, i, nil)
			if err != nil {
				b.Error(err)
				return
			}
			nodes := []string{al.Targets[0].NodeID, al.Targets[1].NodeID, al.Targets[2].NodeID}
			_, err = m.CommitChunks(ctx, f.Ino, []ChunkCommit{{Index: i, Chunk: al.Chunk, Version: 1, Length: 1 << 20, Nodes: nodes}}, (i+1)<<20, 0)
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

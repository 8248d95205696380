package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// The heal benchmarks measure the time from the manager declaring a
// chunkserver dead to every chunk having its replicas again, and compare
// the rate with a plain file copy on the same disk in the same run.
//
//	go test -run '^$' -bench Heal -benchtime 1x ./internal/cluster/
//
// Each is a scenario run once per b.N iteration; run them with -benchtime 1x.

// BenchmarkHealLarge: 2 GiB in 64 MiB-chunk files.
func BenchmarkHealLarge(b *testing.B) {
	const files, size = 16, 128 << 20
	benchHeal(b, clustertest.Options{ChunkServers: 4, Replication: 3, ChunkSize: 64 << 20}, files, size, 4)
}

// BenchmarkHealSmall: 10,000 files of 4 KiB.
func BenchmarkHealSmall(b *testing.B) {
	benchHeal(b, clustertest.Options{ChunkServers: 4, Replication: 3}, 10000, 4<<10, 32)
}

func benchHeal(b *testing.B, o clustertest.Options, files, size, writers int) {
	o.DeadAfter = time.Second
	for range b.N {
		b.StopTimer()
		c := clustertest.New(b, o)
		cl := c.Client()
		ctx := context.Background()
		data := randomData(99, size)
		if _, err := cl.MkdirAll(ctx, "/d", 0o755); err != nil {
			b.Fatal(err)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(writers)
		for i := range files {
			g.Go(func() error {
				_, err := cl.Put(gctx, bytes.NewReader(data), int64(size), "/d/f"+strconv.Itoa(i), nil)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		c.WaitHealthy()
		st, err := cl.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		victim, lost := 0, uint64(0)
		for i := 0; i < c.Size(); i++ {
			for _, n := range st.Nodes {
				if n.Addr == c.ChunkServerAddr(i) && n.UsedBytes > lost {
					victim, lost = i, n.UsedBytes
				}
			}
		}
		// The ceiling is measured now, on the same disk state: dirty data
		// left by the writes above is flushed first, for both it and the
		// heal.
		syscall.Sync()
		plain := plainCopyRate(b, int64(min(files*size, 512<<20)))
		syscall.Sync()
		id := c.ChunkServer(victim).S.NodeID()
		if err := c.StopChunkServer(victim, true); err != nil {
			b.Fatal(err)
		}
		waitDead(b, c, cl, id)
		b.StartTimer()
		start := time.Now()
		c.WaitHealthy()
		took := time.Since(start)
		b.StopTimer()
		rate := float64(lost) / took.Seconds()
		b.ReportMetric(took.Seconds(), "s-to-heal")
		b.ReportMetric(rate/1e6, "heal-MB/s")
		b.ReportMetric(plain/1e6, "plain-copy-MB/s")
		b.ReportMetric(rate/plain, "ratio")
		b.Logf("%d files of %d bytes: %s lost with the node, healed in %v (%.1f MB/s; plain copy %.1f MB/s)",
			files, size, fmt.Sprint(lost), took.Round(time.Millisecond), rate/1e6, plain/1e6)
	}
}

// plainCopyRate copies an n-byte file on the local disk (read, write,
// fsync) and returns bytes per second: the ceiling a heal is compared with.
func plainCopyRate(b *testing.B, n int64) float64 {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, randomData(7, int(n)), 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

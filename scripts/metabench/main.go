// Command metabench measures the manager at scale: it creates N files
// (metadata only) through the client API from several concurrent callers,
// then looks them up, and reports creates/s, lookups/s, and the manager's
// peak RSS and on-disk size. scripts/bench.sh runs it against real daemons.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoalfs/shoal/client"
)

func main() {
	manager := flag.String("manager", "127.0.0.1:9400", "manager address")
	files := flag.Int("files", 1_000_000, "files to create")
	workers := flag.Int("workers", 32, "concurrent callers")
	perDir := flag.Int("per-dir", 1000, "files per directory")
	lookups := flag.Int("lookups", 200_000, "lookups to time")
	pid := flag.Int("manager-pid", 0, "the manager's pid, for its RSS")
	data := flag.String("data", "", "the manager's data directory, for its size")
	flag.Parse()
	if err := run(*manager, *files, *workers, *perDir, *lookups, *pid, *data); err != nil {
		fmt.Fprintln(os.Stderr, "metabench:", err)
		os.Exit(1)
	}
}

func run(manager string, files, workers, perDir, lookups, pid int, data string) error {
	cfg := client.DefaultConfig()
	cfg.Manager = manager
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()

	root, err := c.MkdirAll(ctx, fmt.Sprintf("/metabench-%d", time.Now().UnixNano()), 0o755)
	if err != nil {
		return err
	}
	ndirs := (files + perDir - 1) / perDir
	dirs := make([]client.Ino, ndirs)
	for i := range dirs {
		a, err := c.Mkdir(ctx, root.Ino, "d"+strconv.Itoa(i), 0o755, 0, 0)
		if err != nil {
			return err
		}
		dirs[i] = a.Ino
	}

	var next atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= files {
					return nil
				}
				_, err := c.Create(gctx, dirs[i/perDir], "f"+strconv.Itoa(i%perDir), client.CreateOptions{Mode: 0o100644, Exclusive: true})
				if err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	createRate := float64(files) / time.Since(start).Seconds()

	next.Store(0)
	start = time.Now()
	g, gctx = errgroup.WithContext(ctx)
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for next.Add(1) <= int64(lookups) {
				i := r.IntN(files)
				if _, err := c.Lookup(gctx, dirs[i/perDir], "f"+strconv.Itoa(i%perDir)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	lookupRate := float64(lookups) / time.Since(start).Seconds()

	fmt.Printf("%d files by %d callers: %.0f creates/s, %.0f lookups/s; manager peak RSS %s, on disk %s\n",
		files, workers, createRate, lookupRate, rss(pid), diskSize(data))
	return nil
}

// rss is the peak resident set of pid, from /proc.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%d MiB", kb/1024)
		}
	}
	return "unknown"
}

// diskSize is the total size of the files under dir.
func diskSize(dir string) string {
	if dir == "" {
		return "unknown"
	}
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return fmt.Sprintf("%d MiB", n>>20)
}

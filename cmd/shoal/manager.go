package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"

	"github.com/shoalfs/shoal/healer"
	"github.com/shoalfs/shoal/internal/cluster"
	"github.com/shoalfs/shoal/metadata"
)

func runManager(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "manager", "")
	cfg := metadata.DefaultConfig()
	listen := fs.String("listen", "127.0.0.1:9400", "gRPC address to serve on")
	httpAddr := fs.String("http", "127.0.0.1:9401", "debug HTTP address (pprof, healthz); empty to disable")
	fs.StringVar(&cfg.Dir, "data", "", "data directory for the namespace store (required)")
	fs.IntVar(&cfg.Replication, "replication", cfg.Replication, "replicas per chunk")
	fs.IntVar(&cfg.MinReplicas, "min-replicas", cfg.MinReplicas, "sealed replicas a write needs to succeed (0: min(2, --replication))")
	memLimit := sizeValue(128 << 20)
	fs.Var(&memLimit, "memory-limit", "soft limit for the Go heap (GOMEMLIMIT); Badger's caches make the GC lazy without one (0: none)")
	chunk := sizeValue(cfg.ChunkSize)
	fs.Var(&chunk, "chunk-size", "chunk size for new files")
	fs.DurationVar(&cfg.DeadAfter, "dead-after", cfg.DeadAfter, "declare a chunkserver dead after this long without a heartbeat")
	fs.BoolVar(&cfg.SyncWrites, "sync-writes", false, "fsync the metadata log before acknowledging every change (default: on a client's fsync, and at least every --sync-interval)")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", cfg.SyncInterval, "fsync acknowledged metadata changes at least this often (what a crash of the manager's machine can lose)")
	hcfg := healer.DefaultConfig()
	fs.IntVar(&hcfg.MaxSlotsPerNode, "heal-slots-per-node", hcfg.MaxSlotsPerNode, "repair copies a chunkserver takes part in at once, in slots of 16 MiB of chunk (a small chunk takes one)")
	fs.IntVar(&hcfg.MaxCopies, "heal-copies", hcfg.MaxCopies, "concurrent repair copies in the whole cluster")
	bw := sizeValue(hcfg.BandwidthLimit)
	fs.Var(&bw, "heal-bandwidth", "bytes per second for repair copies, cluster-wide (0: no limit)")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: manager takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg.ChunkSize = int64(chunk)
	if memLimit > 0 {
		debug.SetMemoryLimit(int64(memLimit))
	}
	hcfg.BandwidthLimit = int64(bw)
	root, err := lf.logger(e.stderr)
	if err != nil {
		return err
	}
	log := root.WithField("component", "manager")
	cfg.Log = log
	if cfg.Dir == "" {
		return fmt.Errorf("%w: manager: --data is required", errUsage)
	}
	if err := errors.Join(cfg.Validate(), hcfg.Validate()); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("manager: --listen %s: %w", *listen, err)
	}
	hcfg.Log = root.WithField("component", "healer")
	m, err := cluster.StartManager(cfg, hcfg, lis)
	if err != nil {
		lis.Close()
		return fmt.Errorf("manager: %w", err)
	}
	log.WithField("addr", m.Addr()).WithField("data", cfg.Dir).Info("manager serving")
	return serveDaemon(ctx, log, m, *httpAddr)
}

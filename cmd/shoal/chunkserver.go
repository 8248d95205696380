package main

import (
	"context"
	"fmt"
	"net"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/internal/cluster"
)

func runChunkServer(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "chunkserver", "")
	cfg := chunkserver.DefaultConfig()
	manager := managerFlag(e, fs)
	listen := fs.String("listen", "127.0.0.1:9500", "gRPC address to serve on")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address the manager and peers use to reach this chunkserver (default: --listen)")
	httpAddr := fs.String("http", "", "debug HTTP address (pprof, healthz); off unless set")
	fs.StringVar(&cfg.Dir, "data", "", "data directory for chunks (required)")
	fs.StringVar(&cfg.Rack, "rack", cfg.Rack, "rack name, for spreading replicas")
	capacity := sizeValue(cfg.Capacity)
	fs.Var(&capacity, "capacity", "bytes to offer (default: the disk's size)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", cfg.Heartbeat, "heartbeat interval")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: chunkserver takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg.Manager = *manager
	cfg.Capacity = int64(capacity)
	root, err := lf.logger(e.stderr)
	if err != nil {
		return err
	}
	if cfg.Dir == "" {
		return fmt.Errorf("%w: chunkserver: --data is required", errUsage)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("chunkserver: --listen %s: %w", *listen, err)
	}
	if cfg.Advertise == "" {
		if ip := lis.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
			lis.Close()
			return fmt.Errorf("%w: chunkserver: --listen %s is on every interface; say which address peers should use with --advertise", errUsage, *listen)
		}
		cfg.Advertise = lis.Addr().String()
	}
	log := root.WithFields(map[string]any{"component": "chunkserver", "addr": cfg.Advertise})
	cfg.Log = log
	if err := cfg.Validate(); err != nil {
		lis.Close()
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	s, err := cluster.StartChunkServer(cfg, lis)
	if err != nil {
		lis.Close()
		return fmt.Errorf("chunkserver: %w", err)
	}
	log.WithField("data", cfg.Dir).WithField("manager", cfg.Manager).Info("chunkserver serving")
	return serveDaemon(ctx, log, s, *httpAddr)
}

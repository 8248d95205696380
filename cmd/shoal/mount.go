package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/fuse"
)

func runMount(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "mount", "MOUNTPOINT")
	manager := managerFlag(e, fs)
	o := fuse.DefaultOptions()
	fs.BoolVar(&o.AllowOther, "allow-other", false, "let other users use the mount (the kernel still checks file permissions)")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "mount read-only")
	fs.DurationVar(&o.AttrTimeout, "attr-timeout", o.AttrTimeout, "how long the kernel caches attributes")
	fs.DurationVar(&o.EntryTimeout, "entry-timeout", o.EntryTimeout, "how long the kernel caches names")
	fs.DurationVar(&o.NegativeTimeout, "negative-timeout", o.NegativeTimeout, "how long the kernel caches missing names")
	wb := sizeValue(client.DefaultWriteBuffer)
	fs.Var(&wb, "write-buffer", "memory for written data not yet on chunkservers, across open files")
	inlineMax := sizeValue(client.DefaultInlineMax)
	fs.Var(&inlineMax, "inline-max", fmt.Sprintf("files of at most this size keep their bytes in the manager's records, not on chunkservers (0: never; at most %dKiB)", client.MaxInline>>10))
	memLimit := sizeValue(0)
	fs.Var(&memLimit, "memory-limit", "soft limit for the Go heap (GOMEMLIMIT); 0: the write buffer plus 64MiB")
	opTimeout := fs.Duration("op-timeout", client.DefaultOpTimeout, "an operation the cluster does not answer within this fails with EIO")
	fs.DurationVar(&o.UnmountTimeout, "unmount-timeout", o.UnmountTimeout, "on exit, how long a busy mount may stay in use after it is detached before its connection is aborted")
	fs.BoolVar(&o.SyncUnlink, "sync-unlink", false, "make unlink wait for the manager (default: queued and sent in batches; durable on fsync of the directory)")
	localReads := fs.Bool("local-reads", true, "read replicas on chunkservers of this host straight from their files (descriptors passed over a Unix socket), not over TCP")
	fs.BoolVar(&o.Debug, "debug", false, "log every FUSE request and reply (needs --log-level debug)")
	httpAddr := fs.String("http", "", "serve /debug/pprof/ on this address (off when empty)")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: mount: want exactly one MOUNTPOINT, got %d arguments", errUsage, fs.NArg())
	}
	root, err := lf.logger(e.stderr)
	if err != nil {
		return err
	}
	log := root.WithField("component", "mount")
	o.Log = log

	mountpoint, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	switch st, err := os.Stat(mountpoint); {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mount: mountpoint %s does not exist (create it with mkdir)", mountpoint)
	case err != nil:
		return fmt.Errorf("mount: mountpoint: %w", err)
	case !st.IsDir():
		return fmt.Errorf("mount: mountpoint %s is not a directory", mountpoint)
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("%w: mount: %v", errUsage, err)
	}

	// Written data sits in the write buffer until it is committed; with
	// Go's default GC pacing the heap grows to twice that before a
	// collection. A soft limit keeps the mount's memory near its budget.
	if memLimit == 0 {
		memLimit = sizeValue(int64(wb) + 64<<20)
	}
	debug.SetMemoryLimit(int64(memLimit))

	cfg := client.DefaultConfig()
	cfg.Manager = *manager
	cfg.OpTimeout = *opTimeout
	cfg.RPCTimeout = min(cfg.RPCTimeout, *opTimeout)
	cfg.WriteBuffer = int64(wb)
	cfg.InlineMax = int64(inlineMax)
	cfg.LocalReads = *localReads
	cfg.Log = root.WithField("component", "client")
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: mount: %v", errUsage, err)
	}
	c, err := client.New(cfg)
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	defer c.Close()

	// Mount checks that the manager answers before mounting, so a dead
	// cluster is an error here, not a mount whose every call fails.
	probe, cancel := context.WithTimeout(ctx, min(*opTimeout, 10*time.Second))
	srv, err := fuse.Mount(probe, c, mountpoint, o)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("mount: interrupted before the manager at %s answered", *manager)
		}
		return fmt.Errorf("mount: manager %s: %w", *manager, err)
	}
	log.WithField("manager", *manager).WithField("mountpoint", mountpoint).Info("serving; Ctrl-C or SIGTERM unmounts")
	if *httpAddr != "" {
		stop, err := serveDebug(log, *httpAddr)
		if err != nil {
			srv.Unmount()
			return fmt.Errorf("mount: %w", err)
		}
		defer stop()
	}
	select {
	case <-ctx.Done():
		log.Info("signal received: committing open files and unmounting")
	case <-srv.Done():
		log.Info("unmounted from outside")
	}
	// Unmount commits the data of files still open (Sync) first, so
	// nothing written and buffered is lost.
	if err := srv.Unmount(); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	return nil
}

// Package fusetest mounts shoal for tests.
//
//	c := clustertest.New(t, clustertest.Options{})
//	mnt := fusetest.Mount(t, c.ManagerAddr(), fuse.DefaultOptions())
//	os.WriteFile(filepath.Join(mnt, "f"), data, 0o644)
//
// Every mount is unmounted by t.Cleanup, even when the test fails, and
// the cleanup waits for the serve loop to end. Register the cluster
// first (as above): cleanups run last-in first-out, so the mount goes
// before the cluster it talks to.
//
// FUSE tests skip under -short and where this machine cannot mount
// (no /dev/fuse; not root and no fusermount3), with a message naming
// the reason, except when SHOAL_REQUIRE_FUSE=1 (CI sets it): then they
// fail.
//
// A test that uses the mount from its own process (the usual case)
// must close every file it opens before it ends, or the cleanup will
// have to detach the mount lazily and abort its connection; and it must
// not touch mmapped pages of the mount from Go code (see the fuse
// package documentation, "Deadlocks"): do that in a subprocess.
package fusetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/internal/testlog"
)

// RequireEnv is the environment variable that turns skips into failures.
const RequireEnv = "SHOAL_REQUIRE_FUSE"

// Require skips the test (or fails it, if SHOAL_REQUIRE_FUSE=1) when
// FUSE mounts cannot work here, and skips it under -short.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("fusetest: FUSE tests mount a filesystem; skipped under -short")
	}
	if why := whyUnavailable("/dev/fuse", os.Geteuid(), exec.LookPath); why != "" {
		unavailable(t, "%s", why)
	}
}

// whyUnavailable says why FUSE cannot be mounted here, or "" if it can:
// the device must exist, and a non-root user needs fusermount3.
func whyUnavailable(dev string, euid int, lookPath func(string) (string, error)) string {
	if _, err := os.Stat(dev); err != nil {
		return fmt.Sprintf("no %s: %v", dev, err)
	}
	if euid != 0 {
		if _, err := lookPath("fusermount3"); err != nil {
			return "not root and no fusermount3 in PATH"
		}
	}
	return ""
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("fusetest: %s (and %s=1)", msg, RequireEnv)
	}
	t.Skipf("fusetest: %s; skipping (set %s=1 to fail instead)", msg, RequireEnv)
}

// Mount mounts the cluster whose manager is at managerAddr, with a fresh
// client of default configuration, on a new directory under t.TempDir(),
// and returns the mountpoint. o usually starts from fuse.DefaultOptions();
// a nil o.Log logs through t.Log.
func Mount(t testing.TB, managerAddr string, o fuse.Options) string {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Manager = managerAddr
	mnt, _ := MountConfig(t, cfg, o)
	return mnt
}

// MountConfig is Mount with a client configuration of the caller's (a
// short OpTimeout, say), and it also returns the Server, so a test can
// Unmount or Sync it itself (Unmount may be called again by cleanup).
func MountConfig(t testing.TB, cfg client.Config, o fuse.Options) (string, *fuse.Server) {
	t.Helper()
	Require(t)
	log := testlog.New(t)
	if cfg.Log == nil {
		cfg.Log = log.WithField("component", "client")
	}
	if o.Log == nil {
		o.Log = log.WithField("component", "fuse")
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("fusetest: client: %v", err)
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		c.Close()
		t.Fatalf("fusetest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := fuse.Mount(ctx, c, mnt, o)
	if err != nil {
		c.Close()
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			unavailable(t, "cannot mount: %v", err)
		}
		t.Fatalf("fusetest: mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("fusetest: unmount %s: %v", mnt, err)
		}
		c.Close()
	})
	return mnt, srv
}

// Mounted reports whether dir is a mountpoint (per /proc/self/mountinfo).
func Mounted(t testing.TB, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

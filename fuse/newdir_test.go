package fuse_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// TestNewDirLookups checks where the LOOKUP of a name in a directory this
// mount just made is answered: a name never made there, by the mount
// itself (so with the manager cut off it is still "no such file"); a
// name made there through this mount, by the manager (with the kernel's
// entries dropped, it fails with EIO when the manager is cut off, rather
// than being reported missing).
func TestNewDirLookups(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	proxy := newCutProxy(t, c.ManagerAddr())
	cfg := client.DefaultConfig()
	cfg.Manager = proxy.addr()
	cfg.RPCTimeout, cfg.OpTimeout = time.Second, 3*time.Second
	o := fuse.DefaultOptions()
	// The window stays open for the whole test, however slowly it runs:
	// what is tested is where the answer comes from.
	o.NegativeTimeout = time.Hour
	mnt, _ := fusetest.MountConfig(t, cfg, o)

	d := join(mnt, "new")
	mkdir(t, d)
	mustWrite(t, join(d, "made"), []byte("x"))
	if err := os.Rename(join(d, "made"), join(d, "moved")); err != nil {
		t.Fatal(err)
	}
	fd := openDir(t, d) // keeps d itself resolvable after the drop
	proxy.cutOff()
	// Drop the kernel's dentries, so that every name is looked up again.
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Skipf("cannot drop the kernel's dentries: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, "never-made", &st, 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("a name never made in the new directory: %v, want ENOENT from the mount itself", err)
	}
	if err := unix.Fstatat(fd, "moved", &st, 0); !errors.Is(err, unix.EIO) {
		t.Errorf("a name made here, its entry dropped, the manager cut off: %v, want EIO (looked up for real)", err)
	}
}

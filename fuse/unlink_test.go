package fuse_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// listNames lists dir at the manager, not through a mount.
func listNames(t *testing.T, c *client.Client, dir string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	es, err := c.List(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
	}
	return names
}

// TestQueuedUnlinks removes more files than the unlink queue holds and
// checks that this mount sees each removal at once (listing, lookup,
// re-creating the name, rmdir of the directory), that another client
// sees them all once fsync of the directory returns, and that unmount
// sends what is still queued.
func TestQueuedUnlinks(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	cfg := client.DefaultConfig()
	cfg.Manager = c.ManagerAddr()
	mnt, srv := fusetest.MountConfig(t, cfg, fuse.DefaultOptions())
	direct := c.Client()

	dir := mkdir(t, join(mnt, "d"))
	const n = 300
	for i := range n {
		mustWrite(t, join(dir, fmt.Sprint("f", i)), []byte(fmt.Sprint("old ", i)))
	}
	fd := openDir(t, dir)
	for i := range n {
		if err := os.Remove(join(dir, fmt.Sprint("f", i))); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// The name just removed is gone here, and can be made again.
			if _, err := os.Stat(join(dir, "f0")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("stat of a removed name: %v", err)
			}
			mustWrite(t, join(dir, "f0"), []byte("new"))
		}
	}
	if es, err := os.ReadDir(dir); err != nil || len(es) != 1 || es[0].Name() != "f0" {
		t.Fatalf("listing after the removals: %v, %v; want only f0", es, err)
	}
	if got := string(mustRead(t, join(dir, "f0"))); got != "new" {
		t.Fatalf("f0 made again reads %q", got)
	}
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync of the directory: %v", err)
	}
	if names := listNames(t, direct, "/d"); len(names) != 1 || names[0] != "f0" {
		t.Fatalf("the manager lists %v after fsync of the directory, want [f0]", names)
	}
	if err := os.Remove(join(dir, "f0")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatalf("rmdir right after the removals: %v", err)
	}

	// Removals still queued at unmount reach the manager.
	dir2 := mkdir(t, join(mnt, "e"))
	for i := range 50 {
		mustWrite(t, join(dir2, fmt.Sprint("g", i)), []byte("x"))
	}
	for i := range 50 {
		if err := os.Remove(join(dir2, fmt.Sprint("g", i))); err != nil {
			t.Fatal(err)
		}
	}
	unix.Close(fd)
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	if names := listNames(t, direct, "/e"); len(names) != 0 {
		t.Fatalf("the manager lists %d names after unmount, want none", len(names))
	}
}

// TestQueuedUnlinkUnreachable cuts the mount off from the manager: an
// unlink is queued and reports success, the removal fails, the name
// stays, fsync of the directory reports the failure, and unlinks wait for
// the manager (failing with EIO) until one succeeds again. With
// SyncUnlink the first unlink already fails.
func TestQueuedUnlinkUnreachable(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	direct := c.Client()
	mountVia := func(o fuse.Options) (string, *cutProxy) {
		proxy := newCutProxy(t, c.ManagerAddr())
		cfg := client.DefaultConfig()
		cfg.Manager = proxy.addr()
		cfg.RPCTimeout, cfg.OpTimeout = time.Second, 2*time.Second
		mnt, _ := fusetest.MountConfig(t, cfg, o)
		return mnt, proxy
	}

	mnt, proxy := mountVia(fuse.DefaultOptions())
	dir := mkdir(t, join(mnt, "d"))
	for _, name := range []string{"f", "g", "h"} {
		mustWrite(t, join(dir, name), []byte(name))
	}
	fd := openDir(t, dir)
	proxy.cutOff()
	if err := os.Remove(join(dir, "f")); err != nil {
		t.Fatalf("unlink with the manager cut off: %v, want queued", err)
	}
	if err := unix.Fsync(fd); !errors.Is(err, unix.EIO) {
		t.Fatalf("fsync of the directory after a failed queued unlink: %v, want EIO", err)
	}
	if names := listNames(t, direct, "/d"); len(names) != 3 {
		t.Fatalf("the manager lists %v, want f, g and h", names)
	}
	if err := os.Remove(join(dir, "g")); !errors.Is(err, unix.EIO) {
		t.Fatalf("unlink after a failed queued one, manager cut off: %v, want EIO", err)
	}

	proxy.restore()
	waitFor(t, "f to be back in the mount", clustertest.WaitTimeout, func() error {
		_, err := os.Stat(join(dir, "f"))
		return err
	})
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("a second fsync of the directory: %v (the failure is reported once)", err)
	}
	for _, name := range []string{"f", "g"} {
		if err := os.Remove(join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Fsync(fd); err != nil {
		t.Fatal(err)
	}
	if names := listNames(t, direct, "/d"); len(names) != 1 || names[0] != "h" {
		t.Fatalf("the manager lists %v, want [h]", names)
	}

	o := fuse.DefaultOptions()
	o.SyncUnlink = true
	smnt, sproxy := mountVia(o)
	mustWrite(t, join(smnt, "s"), []byte("s"))
	sproxy.cutOff()
	if err := os.Remove(join(smnt, "s")); !errors.Is(err, unix.EIO) {
		t.Fatalf("unlink with SyncUnlink, manager cut off: %v, want EIO", err)
	}
}

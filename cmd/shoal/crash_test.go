package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// TestMountKill9KeepsFsynced is the durability promise with a crash:
// what was fsynced through a `shoal mount` process, and every namespace
// change it acknowledged, is in the cluster after the process is killed
// with SIGKILL (docs/DURABILITY.md). Data written after the fsync may be
// lost, as with a local filesystem's page cache.
func TestMountKill9KeepsFsynced(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	mnt := t.TempDir()
	p := startProc(t, "mount", "mount", "--manager", c.ManagerAddr(), mnt)
	t.Cleanup(func() {
		// A killed FUSE server leaves its mountpoint dead until unmounted.
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	waitFor(t, "the mount", func() (bool, error) { return fusetest.Mounted(t, mnt), nil })

	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(mnt, "dir", "f"))
	if err != nil {
		t.Fatal(err)
	}
	synced := bytes.Repeat([]byte("fsynced before the crash "), 100000) // ~2.4 MiB, 3 chunks
	if _, err := f.Write(synced); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("written after the fsync, maybe lost")); err != nil {
		t.Fatal(err)
	}
	p.kill()
	f.Close() // fails or not: the server is gone

	cl := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	a, err := cl.Resolve(ctx, "/dir")
	if err != nil || !a.IsDir() || a.Mode&0o777 != 0o750 {
		t.Fatalf("the directory made before the crash: %+v, %v", a, err)
	}
	var got bytes.Buffer
	if _, err := cl.Get(ctx, "/dir/f", &got, nil); err != nil {
		t.Fatal(err)
	}
	if got.Len() < len(synced) || !bytes.Equal(got.Bytes()[:len(synced)], synced) {
		t.Fatalf("after kill -9 the file has %d bytes; want the %d fsynced ones intact", got.Len(), len(synced))
	}
	c.WaitHealthy()
}

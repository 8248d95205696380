package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalfs/shoal/client"
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
	p := startMount(t, mnt, "--manager", c.ManagerAddr())
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

// TestCloseSurvivesKill9OfEveryProcess checks the close(2) promise
// (docs/DURABILITY.md): after close returns, without fsync, the data and
// the namespace changes survive kill -9 of the mount, the manager and
// every chunkserver at once, all restarted from their data directories.
func TestCloseSurvivesKill9OfEveryProcess(t *testing.T) {
	fusetest.Require(t)
	pc := startProcCluster(t, 3, "--chunk-size", "1MiB", "--replication", "3", "--sync-interval", "1h")
	mnt := t.TempDir()
	mount := startMount(t, mnt, "--manager", pc.managerAddr)
	waitFor(t, "the mount", func() (bool, error) { return fusetest.Mounted(t, mnt), nil })

	files := map[string][]byte{}
	// Empty; inline in the manager's records (the mount's --inline-max is
	// 16KiB); one small chunk; several chunks.
	for i, size := range []int{0, 4096, 20 << 10, 3<<20 + 17} {
		data := make([]byte, size)
		rand.Read(data)
		name := fmt.Sprintf("/d/f%d", i)
		files[name] = data
	}
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(mnt, name), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(mnt, "d"), filepath.Join(mnt, "renamed")); err != nil {
		t.Fatal(err)
	}
	// Unlinks are queued by the mount; fsync of their directory returns
	// once the manager has them.
	gone := filepath.Join(mnt, "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	const unlinked = 200
	for i := range unlinked {
		if err := os.WriteFile(filepath.Join(gone, fmt.Sprint(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range unlinked {
		if err := os.Remove(filepath.Join(gone, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.Open(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Sync(); err != nil {
		t.Fatalf("fsync of a directory: %v", err)
	}
	dir.Close()

	mount.kill()
	pc.manager.kill()
	for _, cs := range pc.chunk {
		cs.kill()
	}
	pc.startManager(t)
	for i, args := range pc.chunkArgs {
		pc.chunk[i] = startProc(t, fmt.Sprintf("chunkserver %d", i), args...)
	}
	pc.waitLive(t, 3)

	for name, data := range files {
		name = "/renamed" + strings.TrimPrefix(name, "/d")
		got := mustShoal(t, "cat", "--manager", pc.managerAddr, name)
		if got != string(data) {
			t.Errorf("%s after kill -9 of every process: %d bytes, want the %d closed ones", name, len(got), len(data))
		}
	}
	if got := mustShoal(t, "ls", "--manager", pc.managerAddr, "/gone"); strings.TrimSpace(got) != "" {
		t.Errorf("files unlinked before an fsync of their directory are back after kill -9 of every process: %q", got)
	}
	var fr client.FsckReport
	if err := shoalJSON(t, &fr, "fsck", "--manager", pc.managerAddr); err != nil || !fr.OK() || fr.Files != uint64(len(files)) {
		t.Fatalf("fsck after the restart: %+v, %v", fr, err)
	}
}

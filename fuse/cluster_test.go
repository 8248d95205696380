package fuse_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	err := clustertest.Poll(context.Background(), timeout, func(context.Context) (bool, error) {
		err := cond()
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// TestTwoMounts checks consistency between two mounts of one cluster:
// close-to-open for data, the attribute and entry timeouts for names.
func TestTwoMounts(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	o := fuse.DefaultOptions()
	a := fusetest.Mount(t, c.ManagerAddr(), o)
	b := fusetest.Mount(t, c.ManagerAddr(), o)
	// Within the timeouts plus scheduling slack.
	within := 3 * (o.AttrTimeout + o.EntryTimeout + o.NegativeTimeout)

	t.Run("close-to-open", func(t *testing.T) {
		data := bytes.Repeat([]byte("close-to-open "), 200000) // 2.8 MB, several chunks
		mustWrite(t, join(a, "f"), data)
		if got := mustRead(t, join(b, "f")); !bytes.Equal(got, data) {
			t.Fatalf("B read %d bytes after A closed, want %d", len(got), len(data))
		}
		// Overwrite in place, same size: B's cached pages must not be
		// served on its next open.
		data2 := bytes.Repeat([]byte("CLOSE-TO-OPEN "), 200000)
		mustWrite(t, join(a, "f"), data2)
		if got := mustRead(t, join(b, "f")); !bytes.Equal(got, data2) {
			t.Fatalf("B read stale data after A rewrote and closed the file")
		}
	})
	t.Run("growth", func(t *testing.T) {
		mustWrite(t, join(a, "g"), []byte("one\n"))
		mustRead(t, join(b, "g"))
		f, err := os.OpenFile(join(a, "g"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("two\n"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B to see the appended line", within, func() error {
			if got := string(mustRead(t, join(b, "g"))); got != "one\ntwo\n" {
				return errors.New("B reads " + got)
			}
			return nil
		})
	})
	t.Run("fsync without close", func(t *testing.T) {
		f, err := os.Create(join(a, "s"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.Write([]byte("synced"))
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B to read the fsynced data", within, func() error {
			got, err := os.ReadFile(join(b, "s"))
			if err == nil && string(got) != "synced" {
				err = errors.New("B reads " + string(got))
			}
			return err
		})
	})
	t.Run("create rename delete", func(t *testing.T) {
		// B looks first, so it has negative and positive entries cached.
		if _, err := os.Stat(join(b, "new")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stat before create: %v", err)
		}
		mustWrite(t, join(a, "new"), []byte("n"))
		waitFor(t, "B to see the new file", within, func() error {
			_, err := os.Stat(join(b, "new"))
			return err
		})
		if err := os.Rename(join(a, "new"), join(a, "renamed")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B to see the rename", within, func() error {
			if _, err := os.Stat(join(b, "new")); !errors.Is(err, os.ErrNotExist) {
				return errors.New("old name still there")
			}
			_, err := os.Stat(join(b, "renamed"))
			return err
		})
		if err := os.Remove(join(a, "renamed")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B to see the delete", within, func() error {
			if _, err := os.Stat(join(b, "renamed")); !errors.Is(err, os.ErrNotExist) {
				return errors.New("still there")
			}
			return nil
		})
		if err := os.Mkdir(join(a, "dir"), 0o755); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B to list the new directory", within, func() error {
			entries, err := os.ReadDir(b)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if e.Name() == "dir" && e.IsDir() {
					return nil
				}
			}
			return errors.New("not listed")
		})
	})
	t.Run("read-only mount", func(t *testing.T) {
		ro := o
		ro.ReadOnly = true
		r := fusetest.Mount(t, c.ManagerAddr(), ro)
		mustWrite(t, join(a, "ro"), []byte("readable"))
		if got := mustRead(t, join(r, "ro")); string(got) != "readable" {
			t.Fatalf("read-only mount reads %q", got)
		}
		if err := os.WriteFile(join(r, "ro"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("write on a read-only mount: %v, want EROFS", err)
		}
		if err := os.Mkdir(join(r, "d"), 0o755); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("mkdir on a read-only mount: %v, want EROFS", err)
		}
	})
	c.WaitHealthy()
}

// TestPermissions runs the same operations as an unprivileged user on a
// local directory and on the mount (with allow_other): the kernel must
// allow and refuse the same ones.
func TestPermissions(t *testing.T) {
	fusetest.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	c := clustertest.New(t, clustertest.Options{})
	o := fuse.DefaultOptions()
	o.AllowOther = true
	mnt := fusetest.Mount(t, c.ManagerAddr(), o)
	// Let the unprivileged user reach the mountpoint.
	for _, d := range []string{filepath.Dir(mnt), filepath.Dir(filepath.Dir(mnt))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	local := worldDir(t)
	remote := mkdir(t, join(mnt, "perm"))
	setupPermTree(t, local)
	setupPermTree(t, remote)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	want := runHelperProcess(t, "perms", local, nobody)
	got := runHelperProcess(t, "perms", remote, nobody)
	t.Logf("as uid 65534 on the mount:\n%s", got)
	if got != want {
		t.Errorf("as uid 65534 the mount answers differently from a local disk:\nlocal:\n%s\nmount:\n%s", want, got)
	}
	for _, refusal := range []string{"write a root 0644 file: EACCES", "create in a root 0755 dir: EACCES"} {
		if !strings.Contains(got, refusal) {
			t.Errorf("mount did not answer %q:\n%s", refusal, got)
		}
	}
	c.WaitHealthy()
}

// TestManagerDown checks that with the manager stopped, operations on
// the mount fail with EIO within the op timeout, and that the same
// mount works again once the manager is back.
func TestManagerDown(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	cfg := client.DefaultConfig()
	cfg.Manager = c.ManagerAddr()
	cfg.OpTimeout = 2 * time.Second
	cfg.RPCTimeout = time.Second
	o := fuse.DefaultOptions()
	mnt, _ := fusetest.MountConfig(t, cfg, o)
	data := bytes.Repeat([]byte("survives"), 100000)
	mustWrite(t, join(mnt, "before"), data)

	if err := c.StopManager(false); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		fn   func() error
	}{
		{"stat of a new name", func() error { _, err := os.Stat(join(mnt, "never-seen")); return err }},
		{"create", func() error { return os.WriteFile(join(mnt, "new"), []byte("x"), 0o644) }},
		{"mkdir", func() error { return os.Mkdir(join(mnt, "newdir"), 0o755) }},
		{"open and read", func() error { _, err := os.ReadFile(join(mnt, "before")); return err }},
		{"readdir", func() error { _, err := os.ReadDir(mnt); return err }},
	}
	for _, op := range ops {
		start := time.Now()
		err := op.fn()
		took := time.Since(start)
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s with the manager down: %v, want EIO", op.name, err)
		}
		if limit := cfg.OpTimeout + 3*time.Second; took > limit {
			t.Errorf("%s took %v with the manager down, want under %v", op.name, took, limit)
		}
	}

	if err := c.StartManager(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mount to work again", clustertest.WaitTimeout, func() error {
		got, err := os.ReadFile(join(mnt, "before"))
		if err == nil && !bytes.Equal(got, data) {
			return errors.New("content differs")
		}
		return err
	})
	// Let every chunkserver re-register before writing, so the new file
	// gets all its replicas (a write during the restart is legitimately
	// under-replicated until the healer catches up).
	c.WaitLive(c.Size())
	waitFor(t, "writes to work again", clustertest.WaitTimeout, func() error {
		return os.WriteFile(join(mnt, "after"), data, 0o644)
	})
	if got := mustRead(t, join(mnt, "after")); !bytes.Equal(got, data) {
		t.Fatalf("file written after the restart reads %d bytes", len(got))
	}
	c.WaitHealthy()
}

// TestUnmountBusy unmounts with a file open and written: the data is
// committed, the mount goes away, and nothing hangs.
func TestUnmountBusy(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	o := fuse.DefaultOptions()
	o.UnmountTimeout = time.Second
	cfg := client.DefaultConfig()
	cfg.Manager = c.ManagerAddr()
	mnt, srv := fusetest.MountConfig(t, cfg, o)
	f, err := os.Create(join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("buffered "), 100000)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := srv.Unmount(); err != nil {
		t.Fatalf("unmount with a file open: %v", err)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("serve loop still running after Unmount")
	}
	if fusetest.Mounted(t, mnt) {
		t.Fatalf("%s is still a mountpoint after Unmount", mnt)
	}
	if _, err := f.Write([]byte("late")); err == nil {
		t.Errorf("write after the connection was aborted succeeded")
	}
	f.Close()
	if got := remoteRead(t, c, "/open"); !bytes.Equal(got, data) {
		t.Fatalf("after unmount the client reads %d bytes, want the %d written", len(got), len(data))
	}
	c.WaitHealthy()
}

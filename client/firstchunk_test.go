package client

// Chunk 0's allocation handed out with a create (CreateOptions.Allocate),
// against a real manager (Badger) and real chunkservers on 127.0.0.1.

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/cluster"
	"github.com/shoalfs/shoal/internal/testlog"
	"github.com/shoalfs/shoal/metadata"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// realCluster starts a manager and n chunkservers (replication 3, the
// given minimum, 1 MiB chunks) and returns it with a client, which keeps
// no file inline, once every chunkserver is live. Both stop when the test
// ends.
func realCluster(t *testing.T, n, minReplicas int) (*cluster.Cluster, *Client) {
	return realClusterWith(t, n, minReplicas, func(*Config) {})
}

// realClusterInline is realCluster with a client of the given InlineMax.
func realClusterInline(t *testing.T, n, minReplicas int, inlineMax int64) (*cluster.Cluster, *Client) {
	return realClusterWith(t, n, minReplicas, func(c *Config) { c.InlineMax = inlineMax })
}

// realClusterWith is realCluster with the client's config changed by
// edit.
func realClusterWith(t *testing.T, n, minReplicas int, edit func(*Config)) (*cluster.Cluster, *Client) {
	t.Helper()
	mcfg := metadata.DefaultConfig()
	mcfg.Replication, mcfg.MinReplicas = 3, minReplicas
	mcfg.ChunkSize = mib
	mcfg.DeadAfter = 2 * time.Second
	cl, err := cluster.Start(cluster.Config{Dir: t.TempDir(), ChunkServers: n, Manager: mcfg,
		Heartbeat: 100 * time.Millisecond, Log: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Errorf("cluster close: %v", err)
		}
	})
	cfg := DefaultConfig()
	cfg.Manager = cl.ManagerAddr()
	cfg.InlineMax = 0
	cfg.Log = testlog.New(t).WithField("component", "client")
	edit(&cfg)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitLive(t, c, n)
	return cl, c
}

// waitLive waits until n chunkservers are live and the manager is out of
// safe mode.
func waitLive(t *testing.T, c *Client, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d live chunkservers", n), func() bool {
		st, err := c.Status(context.Background())
		if err != nil || st.SafeMode {
			return false
		}
		live := 0
		for _, nd := range st.Nodes {
			if nd.State == "live" {
				live++
			}
		}
		return live == n
	})
}

// createAllocated creates name with its first chunk allocated.
func createAllocated(t *testing.T, c *Client, name string) Entry {
	t.Helper()
	e, err := c.Create(context.Background(), RootIno, name, CreateOptions{Mode: 0o644, Allocate: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.first == nil || e.first.alloc.GetChunkId() == 0 || len(e.first.alloc.GetTargets()) != 3 {
		t.Fatalf("create %q with Allocate: first chunk %+v", name, e.first)
	}
	return e
}

// chunk0 returns the chunk id the manager's layout of ino has at index 0.
func chunk0(t *testing.T, c *Client, ino Ino) uint64 {
	t.Helper()
	resp, err := c.mgr.GetLayout(context.Background(), &shoalpb.GetLayoutRequest{Ino: uint64(ino)})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range resp.GetChunks() {
		if l.GetIndex() == 0 {
			return l.GetChunkId()
		}
	}
	t.Fatalf("ino %d has no chunk 0: %v", ino, resp.GetChunks())
	return 0
}

// writeClose opens e as the mount does, runs write on it, closes it, and
// checks that the file reads back as want.
func writeClose(t *testing.T, c *Client, e Entry, want []byte, write func(f *File)) {
	t.Helper()
	ctx := context.Background()
	f, err := c.OpenCreated(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	write(f)
	if err := f.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := readAll(t, c, e.Ino, 64<<10); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(want, got))
	}
}

// A file written after a create that allocated its first chunk is
// written on that allocation, and reads back byte for byte, however it is
// written: small, large, past chunk 0 first, after a truncate.
func TestCreateFirstChunkUsed(t *testing.T) {
	_, c := realCluster(t, 3, 2)
	ctx := context.Background()
	small := randBytes(1, 4096)
	large := randBytes(2, mib+mib/2)
	at := func(off int64, p []byte) func(f *File) {
		return func(f *File) { writeInPieces(t, f, p, off, 128<<10) }
	}
	for _, tc := range []struct {
		name  string
		want  []byte
		write func(f *File)
	}{
		{"small", small, at(0, small)},
		{"large", large, at(0, large)},
		{"chunk 1 first", large, func(f *File) { at(mib, large[mib:])(f); at(0, large[:mib])(f) }},
		{"truncated first", small, func(f *File) {
			if err := f.Truncate(ctx, 0); err != nil {
				t.Fatal(err)
			}
			at(0, small)(f)
		}},
		{"patched before close", small, func(f *File) {
			at(0, make([]byte, len(small)))(f)
			at(0, small)(f)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := createAllocated(t, c, tc.name)
			writeClose(t, c, e, tc.want, tc.write)
			if got, want := chunk0(t, c, e.Ino), e.first.alloc.GetChunkId(); got != want {
				t.Fatalf("chunk 0 is chunk %d, not %d, the create's allocation", got, want)
			}
		})
	}

	// Only a regular file that the call makes comes with an allocation.
	for name, create := range map[string]func() (Entry, error){
		"existing file": func() (Entry, error) {
			return c.Create(ctx, RootIno, "small", CreateOptions{Mode: 0o644, Allocate: true})
		},
		"not asked": func() (Entry, error) { return c.Create(ctx, RootIno, "plain", CreateOptions{Mode: 0o644}) },
		"directory": func() (Entry, error) {
			return c.Create(ctx, RootIno, "dir", CreateOptions{Mode: modeDir | 0o755, Allocate: true})
		},
	} {
		e, err := create()
		if err != nil || e.first != nil {
			t.Errorf("%s: first chunk %+v, %v", name, e.first, err)
		}
	}
}

// An allocation too old to use, or one the manager no longer knows (it
// restarted), or one with a target down, gives way to a fresh one; the
// data reads back byte for byte.
func TestCreateFirstChunkFallbacks(t *testing.T) {
	cl, c := realCluster(t, 4, 3)
	data := randBytes(3, 5000)
	write := func(f *File) { writeInPieces(t, f, data, 0, len(data)) }
	check := func(t *testing.T, e Entry) {
		t.Helper()
		if got := chunk0(t, c, e.Ino); got == e.first.alloc.GetChunkId() {
			t.Fatalf("chunk 0 was written on the create's allocation %d", got)
		}
	}

	t.Run("too old", func(t *testing.T) {
		e := createAllocated(t, c, "old")
		e.first.at = time.Now().Add(-firstChunkMaxAge)
		writeClose(t, c, e, data, write)
		check(t, e)
	})

	t.Run("target down", func(t *testing.T) {
		e := createAllocated(t, c, "down")
		stopped := -1
		for i := range cl.Size() {
			if cl.ChunkServerAddr(i) == e.first.alloc.GetTargets()[0].GetAddr() {
				stopped = i
			}
		}
		if err := cl.StopChunkServer(stopped, true); err != nil {
			t.Fatal(err)
		}
		// Three replicas are needed: the write-out fails on the
		// create's targets and goes to the three others.
		writeClose(t, c, e, data, write)
		check(t, e)
		if err := cl.StartChunkServer(stopped); err != nil {
			t.Fatal(err)
		}
		waitLive(t, c, 4)
	})

	t.Run("manager restarted", func(t *testing.T) {
		e := createAllocated(t, c, "restart")
		if err := cl.StopManager(false); err != nil {
			t.Fatal(err)
		}
		if err := cl.StartManager(); err != nil {
			t.Fatal(err)
		}
		// The replicas go out on the lost allocation; its commit is
		// refused as stale and the chunk is written again.
		writeClose(t, c, e, data, write)
		check(t, e)
	})
}

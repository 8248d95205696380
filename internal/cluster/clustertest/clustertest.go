// Package clustertest starts an in-process shoal cluster for a test: a
// manager and N chunkservers on 127.0.0.1 with free ports, each in its own
// temporary directory and logging through t.Log. Everything it starts is
// stopped by t.Cleanup, even when the test fails.
//
// Waits poll a condition until a deadline; they never sleep a fixed time.
package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/internal/cluster"
	"github.com/shoalfs/shoal/internal/testlog"
	"github.com/shoalfs/shoal/metadata"
)

// Options configure a test cluster. Zero fields take test-friendly
// defaults: 3 chunkservers, replication 3, 1 MiB chunks (so small test
// files span several chunks), 100 ms heartbeats, 2 s dead-after.
type Options struct {
	ChunkServers int
	Replication  int
	MinReplicas  int
	ChunkSize    int64
	Heartbeat    time.Duration
	DeadAfter    time.Duration
	Capacity     int64
	Racks        []string
}

// Cluster is a running test cluster.
type Cluster struct {
	*cluster.Cluster
	t testing.TB
}

// WaitTimeout bounds every wait in this package.
const WaitTimeout = 30 * time.Second

// New starts a cluster and waits until every chunkserver has registered.
func New(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.ChunkServers == 0 {
		o.ChunkServers = 3
	}
	if o.Replication == 0 {
		o.Replication = min(3, o.ChunkServers)
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = 1 << 20
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 100 * time.Millisecond
	}
	if o.DeadAfter == 0 {
		o.DeadAfter = 2 * time.Second
	}
	mcfg := metadata.DefaultConfig()
	mcfg.Replication = o.Replication
	mcfg.MinReplicas = min(mcfg.MinReplicas, o.Replication)
	if o.MinReplicas > 0 {
		mcfg.MinReplicas = o.MinReplicas
	}
	mcfg.ChunkSize = o.ChunkSize
	mcfg.DeadAfter = o.DeadAfter
	c, err := cluster.Start(cluster.Config{
		Dir:          t.TempDir(),
		ChunkServers: o.ChunkServers,
		Racks:        o.Racks,
		Capacity:     o.Capacity,
		Manager:      mcfg,
		Heartbeat:    o.Heartbeat,
		Log:          testlog.New(t),
	})
	if err != nil {
		t.Fatalf("clustertest: start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("clustertest: close: %v", err)
		}
	})
	tc := &Cluster{Cluster: c, t: t}
	tc.WaitLive(o.ChunkServers)
	return tc
}

// Client returns a client of the cluster, closed when the test ends.
func (c *Cluster) Client() *client.Client {
	c.t.Helper()
	cfg := client.DefaultConfig()
	cfg.Manager = c.ManagerAddr()
	cfg.OpTimeout = WaitTimeout
	cfg.Log = testlog.New(c.t).WithField("component", "client")
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatalf("clustertest: client: %v", err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// WaitFor polls cond until it returns true or WaitTimeout passes, then
// fails the test naming what it waited for. cond's error is reported if
// the wait times out.
func (c *Cluster) WaitFor(what string, cond func(ctx context.Context) (bool, error)) {
	c.t.Helper()
	if err := Poll(context.Background(), WaitTimeout, cond); err != nil {
		c.t.Fatalf("clustertest: waiting for %s: %v", what, err)
	}
}

// Poll calls cond every 20 ms until it returns true, or fails when timeout
// passes, with cond's last error.
func Poll(ctx context.Context, timeout time.Duration, cond func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// WaitLive waits until exactly n chunkservers are live.
func (c *Cluster) WaitLive(n int) {
	c.t.Helper()
	cl := c.Client()
	c.WaitFor(fmt.Sprintf("%d live chunkservers", n), func(ctx context.Context) (bool, error) {
		st, err := cl.Status(ctx)
		if err != nil {
			return false, err
		}
		live := 0
		for _, nd := range st.Nodes {
			if nd.State == "live" {
				live++
			}
		}
		return live == n, fmt.Errorf("%d live", live)
	})
}

// WaitHealthy waits until fsck of the whole namespace finds every chunk
// healthy, and returns that report.
func (c *Cluster) WaitHealthy() client.FsckReport {
	c.t.Helper()
	cl := c.Client()
	var rep client.FsckReport
	c.WaitFor("a healthy fsck", func(ctx context.Context) (bool, error) {
		r, err := cl.Fsck(ctx, "/")
		if err != nil {
			return false, err
		}
		rep = r
		return r.OK(), fmt.Errorf("fsck: %+v", r)
	})
	return rep
}

// Fsck runs fsck of the whole namespace once and fails the test unless
// every chunk is healthy: the invariant check that ends cluster tests.
func (c *Cluster) Fsck() client.FsckReport {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	r, err := c.Client().Fsck(ctx, "/")
	if err != nil {
		c.t.Fatalf("clustertest: fsck: %v", err)
	}
	if !r.OK() {
		c.t.Fatalf("clustertest: fsck found problems: %+v", r)
	}
	return r
}

package cluster_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/chunkserver/diskstore"
	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// slotOf is the cluster slot of the chunkserver with node id id.
func slotOf(t *testing.T, c *clustertest.Cluster, id string) int {
	t.Helper()
	for i := 0; i < c.Size(); i++ {
		if s := c.ChunkServer(i); s != nil && s.S.NodeID() == id {
			return i
		}
	}
	t.Fatalf("no running chunkserver has node id %s", id)
	return -1
}

// replicasOnDisk counts the sealed replica files in every slot's directory.
func replicasOnDisk(t *testing.T, c *clustertest.Cluster) []int {
	t.Helper()
	out := make([]int, c.Size())
	for i := range out {
		rs, err := diskstore.ListReplicas(c.ChunkServerDir(i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = len(rs)
	}
	return out
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// waitDead waits until the manager declares the node with id dead.
func waitDead(t testing.TB, c *clustertest.Cluster, cl *client.Client, id string) {
	t.Helper()
	c.WaitFor("node "+id+" to be declared dead", func(ctx context.Context) (bool, error) {
		st, err := cl.Status(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.ID == id {
				return n.State == "dead", nil
			}
		}
		return false, fmt.Errorf("node %s not in status", id)
	})
}

// waitHealthyWithin waits for a healthy fsck, failing the test if it takes
// longer than bound.
func waitHealthyWithin(t *testing.T, c *clustertest.Cluster, cl *client.Client, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	err := clustertest.Poll(context.Background(), bound, func(ctx context.Context) (bool, error) {
		r, err := cl.Fsck(ctx, "/")
		if err != nil {
			return false, err
		}
		return r.OK(), fmt.Errorf("fsck: %+v", r)
	})
	if err != nil {
		t.Fatalf("not fully replicated within %v: %v", bound, err)
	}
	return time.Since(start)
}

// A chunkserver dies: reads go on, the manager declares it dead, and the
// healer restores three replicas on the survivors within a bound. When
// the node comes back, its now-extra replicas are trimmed from its disk.
func TestKillChunkServerHealsAndTrims(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{ChunkServers: 4, Replication: 3, DeadAfter: time.Second})
	cl := c.Client()
	data := randomData(10, 6<<20)
	put(t, cl, "/f", data)
	ctx := context.Background()
	locs, err := cl.Locate(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	victim := slotOf(t, c, locs[0].Nodes[0].ID)
	if err := c.StopChunkServer(victim, true); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "read with a node down", get(t, c.Client(), "/f"), data)

	// Until the node is declared dead its replicas still count; then the
	// healer has a few passes (heartbeats every 100 ms here) to restore.
	waitDead(t, c, cl, locs[0].Nodes[0].ID)
	took := waitHealthyWithin(t, c, cl, 10*time.Second)
	t.Logf("fully replicated %v after the node was declared dead", took)
	mustEqual(t, "read after healing", get(t, c.Client(), "/f"), data)
	for _, l := range mustLocate(t, cl, "/f") {
		for _, n := range l.Nodes {
			if n.ID == locs[0].Nodes[0].ID {
				t.Fatalf("chunk %d still lists the dead node", l.Index)
			}
		}
	}

	// The node returns with its old replicas: they are extra now.
	if err := c.StartChunkServer(victim); err != nil {
		t.Fatal(err)
	}
	c.WaitLive(4)
	c.WaitFor("the returning node's extra replicas to be trimmed from disk", func(ctx context.Context) (bool, error) {
		r, err := cl.Fsck(ctx, "/")
		if err != nil {
			return false, err
		}
		onDisk := replicasOnDisk(t, c)
		return r.OK() && sum(onDisk) == 3*int(r.Chunks), fmt.Errorf("fsck %+v, replica files per node %v", r, onDisk)
	})
	mustEqual(t, "read after trimming", get(t, c.Client(), "/f"), data)
}

func mustLocate(t *testing.T, cl *client.Client, p string) []client.ChunkLocation {
	t.Helper()
	locs, err := cl.Locate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return locs
}

// A chunkserver dies in the middle of a large write: the pipeline is
// rebuilt from the survivors and the write completes and verifies. With
// three nodes at replication 3, the killed node is in every chain.
func TestKillChunkServerMidWrite(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{ChunkServers: 3, Replication: 3, MinReplicas: 2, DeadAfter: time.Second})
	cl := c.Client()
	ctx := context.Background()
	a, err := cl.Create(ctx, client.RootIno, "big", client.CreateOptions{Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	f, err := cl.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(11, 12<<20)
	const piece, victim = 256 << 10, 1
	killed := false
	for off := 0; off < len(data); off += piece {
		if _, err := f.WriteAt(ctx, data[off:off+piece], int64(off)); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
		if !killed && off >= 3<<20 {
			if err := c.StopChunkServer(victim, true); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if err := f.Close(ctx); err != nil {
		t.Fatalf("close after a chunkserver died mid-write: %v", err)
	}
	if !killed {
		t.Fatal("the test never killed a chunkserver")
	}
	mustEqual(t, "read back", get(t, c.Client(), "/big"), data)
	// Bring the node back: the healer tops the chunks written without it
	// up to three replicas.
	if err := c.StartChunkServer(victim); err != nil {
		t.Fatal(err)
	}
	waitHealthyWithin(t, c, cl, 20*time.Second)
	mustEqual(t, "read back after healing", get(t, c.Client(), "/big"), data)
}

// Two of a chunk's three replicas are lost at once: reads still work from
// the last one while the healer restores the other two.
func TestKillTwoOfThree(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{ChunkServers: 5, Replication: 3, DeadAfter: time.Second})
	cl := c.Client()
	data := randomData(12, 4<<20+7)
	put(t, cl, "/f", data)
	locs := mustLocate(t, cl, "/f")
	for _, n := range locs[0].Nodes[:2] {
		if err := c.StopChunkServer(slotOf(t, c, n.ID), true); err != nil {
			t.Fatal(err)
		}
	}
	mustEqual(t, "read with two of three replicas gone", get(t, c.Client(), "/f"), data)
	for _, n := range locs[0].Nodes[:2] {
		waitDead(t, c, cl, n.ID)
	}
	waitHealthyWithin(t, c, cl, 20*time.Second)
	for _, l := range mustLocate(t, cl, "/f") {
		if len(l.Nodes) != 3 {
			t.Fatalf("chunk %d on %d nodes after healing, want 3", l.Index, len(l.Nodes))
		}
	}
	mustEqual(t, "read after healing", get(t, c.Client(), "/f"), data)
}

// A deleted file's chunks disappear from every chunkserver's disk, and so
// do the old versions of an overwritten chunk.
func TestDeletedChunksLeaveDisks(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{})
	cl := c.Client()
	put(t, cl, "/keep", randomData(13, 1<<20+1))
	put(t, cl, "/gone", randomData(14, 3<<20))
	ctx := context.Background()
	if err := cl.Remove(ctx, "/gone", false); err != nil {
		t.Fatal(err)
	}
	// Overwrite the middle of /keep: chunk 0 gets version 2.
	a, err := cl.Resolve(ctx, "/keep")
	if err != nil {
		t.Fatal(err)
	}
	f, err := cl.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(ctx, []byte("patched"), 1000); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Every disk ends up holding exactly /keep's current replicas: the
	// deleted file's chunks and the overwritten chunk's old version go.
	want := map[diskstore.Replica]bool{}
	for _, l := range mustLocate(t, cl, "/keep") {
		want[diskstore.Replica{ID: chunk.ID(l.ChunkID), Version: l.Version}] = true
	}
	if len(want) != 2 {
		t.Fatalf("/keep has %d chunks, want 2", len(want))
	}
	c.WaitFor("only /keep's current replicas on every disk", func(context.Context) (bool, error) {
		for i := 0; i < c.Size(); i++ {
			rs, err := diskstore.ListReplicas(c.ChunkServerDir(i))
			if err != nil {
				return false, err
			}
			got := map[diskstore.Replica]bool{}
			for _, r := range rs {
				got[r] = true
			}
			if !maps.Equal(got, want) {
				return false, fmt.Errorf("node %d holds %v, want %v", i, rs, want)
			}
		}
		return true, nil
	})
	c.Fsck()
}

// Decommissioning drains a node: its chunks are copied away, its replicas
// deleted, and status shows it going from draining to drained.
func TestDecommissionDrains(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{ChunkServers: 4, Replication: 3})
	cl := c.Client()
	data := randomData(15, 5<<20)
	put(t, cl, "/f", data)
	ctx := context.Background()
	victim := 0
	id := c.ChunkServer(victim).S.NodeID()
	if err := cl.Decommission(ctx, c.ChunkServerAddr(victim)); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("the node to be drained", func(ctx context.Context) (bool, error) {
		st, err := cl.Status(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.ID == id {
				return n.State == "drained", fmt.Errorf("state %s, %d chunks", n.State, n.Chunks)
			}
		}
		return false, fmt.Errorf("node %s not in status", id)
	})
	c.WaitFor("the drained node's disk to be empty", func(context.Context) (bool, error) {
		n := replicasOnDisk(t, c)
		return n[victim] == 0, fmt.Errorf("replica files per node: %v", n)
	})
	for _, l := range mustLocate(t, cl, "/f") {
		for _, n := range l.Nodes {
			if n.ID == id {
				t.Fatalf("chunk %d still on the drained node", l.Index)
			}
		}
		if len(l.Nodes) != 3 {
			t.Fatalf("chunk %d on %d nodes, want 3", l.Index, len(l.Nodes))
		}
	}
	mustEqual(t, "read after draining", get(t, c.Client(), "/f"), data)
	c.Fsck()
}

// A file written just after a manager restart, while chunkservers are
// still re-registering, lands on fewer nodes than wanted; once they are
// back, the healer tops it up.
func TestWriteDuringReregistrationHeals(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{ChunkServers: 3, Replication: 3, MinReplicas: 1})
	if err := c.StopManager(false); err != nil {
		t.Fatal(err)
	}
	if err := c.StartManager(); err != nil {
		t.Fatal(err)
	}
	cl := c.Client()
	data := randomData(16, 3<<20)
	put(t, cl, "/early", data)
	c.WaitLive(3)
	waitHealthyWithin(t, c, cl, 20*time.Second)
	mustEqual(t, "read back", get(t, c.Client(), "/early"), data)
}

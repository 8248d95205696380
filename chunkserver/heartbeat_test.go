package chunkserver_test

import (
	"net"
	"testing"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/storetest"
	"github.com/shoalfs/shoal/internal/testlog"
	shoalpb "github.com/shoalfs/shoal/proto"
)

func TestNodeIDPersists(t *testing.T) {
	m := startManager(t)
	dir := t.TempDir()
	n := startNodes(t, m, 1, func(c *chunkserver.Config) { c.Dir = dir })[0]
	id := n.srv.NodeID()
	if _, err := writeChunk(t.Context(), n.client, header(1, 1), patch{0, storetest.Data(1, 5000)}); err != nil {
		t.Fatal(err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}

	// Reopened without running: the id is known before any dial.
	cfg := chunkserver.DefaultConfig()
	cfg.Manager, cfg.Advertise, cfg.Dir, cfg.Log = m.addr, "127.0.0.1:1", dir, testlog.New(t)
	s, err := chunkserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NodeID(); got != id {
		t.Fatalf("node id after reopening: %q, want %q", got, id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Restarted: it registers under the same id, with its chunks.
	n2 := startNode(t, m.addr, func(c *chunkserver.Config) { c.Dir = dir })
	waitFor(t, "registration after restart", func() bool { return len(m.registrations(n2.addr)) > 0 })
	r := m.registrations(n2.addr)[0]
	if r.NodeId != id || len(r.Chunks) != 1 || r.Chunks[0].ChunkId != 1 || r.Chunks[0].Length != 5000 {
		t.Fatalf("registration after restart: id %q chunks %v, want id %q and chunk 1", r.NodeId, r.Chunks, id)
	}
}

func TestReregister(t *testing.T) {
	m := startManager(t)
	n := startNodes(t, m, 1)[0]
	data := storetest.Data(1, 70_000)
	if _, err := writeChunk(t.Context(), n.client, header(8, 2), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.reregister[n.srv.NodeID()] = true
	m.mu.Unlock()
	waitFor(t, "a second registration", func() bool { return len(m.registrations(n.addr)) >= 2 })
	r := m.registrations(n.addr)[1]
	want := storetest.Info(8, 2, data)
	if r.NodeId != n.srv.NodeID() || len(r.Chunks) != 1 || r.Chunks[0].ChunkId != 8 || r.Chunks[0].Version != 2 ||
		r.Chunks[0].Length != uint64(want.Length) || r.Chunks[0].Summary != want.Summary || r.CapacityBytes == 0 || r.UsedBytes == 0 {
		t.Fatalf("re-registration: %v, want node %s with chunk 8 v2 %+v", r, n.srv.NodeID(), want)
	}
}

func TestHeartbeatDeletes(t *testing.T) {
	m := startManager(t)
	n := startNodes(t, m, 1)[0]
	for id := chunkserver.ChunkID(1); id <= 2; id++ {
		if _, err := writeChunk(t.Context(), n.client, header(id, 1), patch{0, storetest.Data(1, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	m.deletes[n.srv.NodeID()] = []*shoalpb.ChunkReport{{ChunkId: 1, Version: 1}}
	m.mu.Unlock()
	waitFor(t, "removed report", func() bool { return m.reported(n.srv.NodeID(), 1, 1, removed) })
	if names := files(t, n); len(names) != 1 {
		t.Fatalf("files after the delete: %v, want chunk 2 only", names)
	}
}

func TestManagerDownAtStart(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nobody listens there yet
	n := startNode(t, addr)
	if _, err := writeChunk(t.Context(), n.client, header(1, 1), patch{0, []byte("served while the manager is down")}); err != nil {
		t.Fatal(err)
	}
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	m := serveManager(t, lis)
	waitFor(t, "registration once the manager is up", func() bool { return len(m.registrations(n.addr)) > 0 })
	r := m.registrations(n.addr)[0]
	if len(r.Chunks) != 1 || r.Chunks[0].ChunkId != 1 {
		t.Fatalf("registration reports %v, want chunk 1", r.Chunks)
	}
	waitFor(t, "heartbeats", func() bool { return m.heartbeatsFrom(n.srv.NodeID()) > 0 })
}

func TestConfigValidate(t *testing.T) {
	good := chunkserver.DefaultConfig()
	good.Manager, good.Advertise, good.Dir = "m:1", "a:2", "/d"
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*chunkserver.Config)
	}{
		{"no manager", func(c *chunkserver.Config) { c.Manager = "" }},
		{"no advertise", func(c *chunkserver.Config) { c.Advertise = "" }},
		{"no dir", func(c *chunkserver.Config) { c.Dir = "" }},
		{"negative capacity", func(c *chunkserver.Config) { c.Capacity = -1 }},
		{"zero heartbeat", func(c *chunkserver.Config) { c.Heartbeat = 0 }},
		{"negative scrub interval", func(c *chunkserver.Config) { c.ScrubInterval = -1 }},
		{"negative scrub rate", func(c *chunkserver.Config) { c.ScrubRate = -1 }},
		{"negative workers", func(c *chunkserver.Config) { c.ReplicateWorkers = -1 }},
	}
	for _, c := range cases {
		cfg := good
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", c.name)
		}
		if _, err := chunkserver.New(cfg); err == nil {
			t.Errorf("%s: New accepted it", c.name)
		}
	}
}

package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalfs/shoal/client"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is meant):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// The text of status and fsck is read by people and parsed by scripts
// (scripts/failure-demo.sh reads the STATE and CHUNKS columns).
func TestStatusOutput(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	st := client.StatusReport{
		Nodes: []client.NodeStatus{
			{ID: "cs-1", Addr: "127.0.0.1:9501", Rack: "r1", State: "live", Chunks: 12, UsedBytes: 3 << 30, CapacityBytes: 100 << 30, LastHeartbeat: now.Add(-300 * time.Millisecond)},
			{ID: "cs-2", Addr: "127.0.0.1:9502", State: "dead", Chunks: 7, UsedBytes: 1 << 20, CapacityBytes: 100 << 30, LastHeartbeat: now.Add(-11 * time.Second)},
			{ID: "cs-3", Addr: "127.0.0.1:9503", State: "draining", Chunks: 1, CapacityBytes: 50 << 30},
		},
		Files: 3, Chunks: 12, UnderReplicated: 7, Replication: 3,
		Healer: client.HealerStatus{Queued: 5, Copying: 2, Done: 9, BytesPerSec: 120 << 20},
	}
	var b bytes.Buffer
	printStatus(&b, st, now)
	golden(t, "status.txt", b.Bytes())
}

func TestFsckOutput(t *testing.T) {
	r := client.FsckReport{Files: 2, Chunks: 5, Healthy: 3, UnderReplicated: 1, Missing: 1,
		Problems: []client.FsckProblem{
			{Path: "/a/b", ChunkID: 4, Version: 2, State: "under_replicated", LiveReplicas: 2, Wanted: 3},
			{Path: "/c", ChunkID: 9, Version: 1, State: "missing", LiveReplicas: 0, Wanted: 3},
		}}
	var b bytes.Buffer
	printFsck(&b, r)
	golden(t, "fsck-unhealthy.txt", b.Bytes())
	b.Reset()
	printFsck(&b, client.FsckReport{Files: 2, Chunks: 5, Healthy: 5})
	golden(t, "fsck-healthy.txt", b.Bytes())
}

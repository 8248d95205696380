package chunkserver_test

import (
	"sync"
	"testing"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/storetest"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// syncLog records the replicas a node's store was asked to sync.
type syncLog struct {
	mu   sync.Mutex
	seen map[storetest.Op]int
}

func (l *syncLog) option() func(*chunkserver.Config) {
	return faultyStore(storetest.Rule{Ops: []storetest.OpKind{storetest.OpSync}, Match: func(op storetest.Op) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.seen == nil {
			l.seen = make(map[storetest.Op]int)
		}
		l.seen[op]++
		return false
	}})
}

func (l *syncLog) count(id chunkserver.ChunkID, version uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[storetest.Op{Kind: storetest.OpSync, ID: id, Version: version}]
}

// A write seals without fsync unless its header asks; SyncChunks fsyncs
// sealed replicas later and reports each one's outcome.
func TestWriteSyncFlagAndSyncChunks(t *testing.T) {
	m := startManager(t)
	logs := make([]*syncLog, 3)
	nodes := make([]*node, 3)
	for i := range nodes {
		logs[i] = &syncLog{}
		nodes[i] = startNode(t, m.addr, logs[i].option())
	}
	ctx := t.Context()
	data := storetest.Data(1, 100_000)
	if _, err := writeChunk(ctx, nodes[0].client, header(1, 1, nodes[1:]...), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	h := header(2, 1, nodes[1:]...)
	h.Sync = true
	if _, err := writeChunk(ctx, nodes[0].client, h, patch{0, data}); err != nil {
		t.Fatal(err)
	}
	for i, l := range logs {
		if n := l.count(1, 1); n != 0 {
			t.Errorf("node %d synced chunk 1 (written without the sync flag) %d times", i, n)
		}
		if n := l.count(2, 1); n != 1 {
			t.Errorf("node %d synced chunk 2 (written with the sync flag) %d times, want 1", i, n)
		}
	}

	resp, err := nodes[2].client.SyncChunks(ctx, &shoalpb.SyncChunksRequest{Chunks: []*shoalpb.ChunkRef{
		{ChunkId: 1, Version: 1}, {ChunkId: 9, Version: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if errs := resp.GetErrors(); len(errs) != 2 || errs[0] != "" || errs[1] == "" {
		t.Fatalf("SyncChunks of a sealed and a missing replica: errors %q, want [\"\" <why>]", errs)
	}
	if n := logs[2].count(1, 1); n != 1 {
		t.Fatalf("SyncChunks synced chunk 1 %d times, want 1", n)
	}
	if got, err := readChunk(ctx, nodes[2].client, 1, 1, 0, uint64(len(data))); err != nil || string(got) != string(data) {
		t.Fatalf("read after sync: %d bytes, %v", len(got), err)
	}
}

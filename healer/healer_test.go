package healer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/testlog"
)

// send hands one token to a gated Replicate, failing the test if none
// takes it in time.
func send(t *testing.T, gate chan struct{}) {
	t.Helper()
	select {
	case gate <- struct{}{}:
	case <-time.After(waitTimeout):
		t.Fatalf("no copy took a token within %v", waitTimeout)
	}
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("no %s within %v", what, waitTimeout)
		panic("unreachable")
	}
}

// copies returns the copy calls of calls.
func copies(calls []string) []string {
	return slices.DeleteFunc(slices.Clone(calls), func(c string) bool { return !strings.HasPrefix(c, "copy ") })
}

// checkReplicated fails unless every chunk of v has wanted live holders.
func checkReplicated(t *testing.T, v View) {
	t.Helper()
	state := map[string]NodeState{}
	for _, n := range v.Nodes {
		state[n.ID] = n.State
	}
	for _, c := range v.Chunks {
		live := 0
		for _, id := range c.Holders {
			if state[id] == Live && !slices.Contains(c.Corrupt, id) {
				live++
			}
		}
		if live != c.Wanted {
			t.Errorf("chunk %d: %d live replicas on %v, want %d", c.ID, live, c.Holders, c.Wanted)
		}
	}
}

func TestHealerCopiesMostAtRiskFirst(t *testing.T) {
	f := newFake(View{Nodes: liveNodes("a", "b", "c", "d", "e"), Chunks: []Chunk{
		chunk(1, 3, "a", "b"),
		chunk(2, 3, "c"),
		chunk(3, 3, "d", "e"),
	}})
	cfg := testConfig()
	cfg.MaxCopies = 1 // one at a time, so the calls come in plan order
	hs := start(t, cfg, f, nil)
	hs.until(t, "all is replicated", idle)
	calls, v := f.snapshot()
	checkReplicated(t, v)
	var order []string
	for _, c := range copies(calls) {
		order = append(order, strings.Fields(c)[1])
	}
	// c2 (one live replica) first; then all have two, and go by id.
	if want := []string{"c2", "c1", "c2", "c3"}; !slices.Equal(order, want) {
		t.Errorf("copy order %q, want %q (calls %q)", order, want, calls)
	}
}

func TestHealerCopyLimits(t *testing.T) {
	tests := []struct {
		name              string
		nodes             []Node
		holders           func(i int) string
		perNode, global   int
		wantMaxPerNodeHit bool
	}{
		{
			name:    "per node",
			nodes:   liveNodes("a", "b", "c", "d", "e", "f"),
			holders: func(int) string { return "a" }, // one source for all
			perNode: 2, global: 32,
			wantMaxPerNodeHit: true,
		},
		{
			name:    "global",
			nodes:   liveNodes("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"),
			holders: func(i int) string { return string(rune('a' + i%12)) },
			perNode: 4, global: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const n = 12
			v := View{Nodes: tc.nodes}
			for i := range n {
				v.Chunks = append(v.Chunks, chunk(uint64(i+1), 2, tc.holders(i)))
			}
			f := newFake(v)
			f.gate = make(chan struct{})
			f.entered = make(chan string, n)
			cfg := testConfig()
			cfg.MaxSlotsPerNode, cfg.MaxCopies = tc.perNode, tc.global
			hs := start(t, cfg, f, nil)
			// Each copy blocks until it gets a token, so the copies the
			// healer starts really overlap. Once as many as the limits
			// allow are in, tokens go one at a time: a healer that
			// overshot would pile up more copies meanwhile.
			for range min(tc.perNode, tc.global) {
				receive(t, f.entered, "a copy")
			}
			for range n {
				send(t, f.gate)
			}
			hs.until(t, "all is replicated", idle)
			calls, v := f.snapshot()
			checkReplicated(t, v)
			if len(copies(calls)) != n {
				t.Errorf("%d copies, want %d: %q", len(copies(calls)), n, calls)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			top := 0
			for id, m := range f.maxNode {
				if m > tc.perNode {
					t.Errorf("node %s took part in %d copies at once, limit %d", id, m, tc.perNode)
				}
				top = max(top, m)
			}
			if f.maxAll > tc.global {
				t.Errorf("%d copies at once, limit %d", f.maxAll, tc.global)
			}
			// The limits were reached, so the test exercised them.
			if want := min(tc.global, n); tc.wantMaxPerNodeHit && top != tc.perNode || !tc.wantMaxPerNodeHit && f.maxAll != want {
				t.Errorf("most at once: per node %d, overall %d; want the binding limit reached exactly", top, f.maxAll)
			}
		})
	}
}

func TestHealerDrainsNode(t *testing.T) {
	f := newFake(View{
		Nodes: []Node{
			node("a", "r1", Live, 0, 100), node("b", "r2", Live, 0, 100), node("c", "r3", Live, 0, 100),
			node("d", "r1", Draining, 0, 100),
		},
		Chunks: []Chunk{
			chunk(1, 2, "d"),
			chunk(2, 2, "a", "d"),
			chunk(3, 2, "b", "c", "d"),
		},
	})
	hs := start(t, testConfig(), f, nil)
	r := hs.until(t, "d is drained", func(r Report) bool { return slices.Contains(r.Drained, "d") && idle(r) })
	if r.Draining["d"] != 0 {
		t.Errorf("Draining = %v", r.Draining)
	}
	calls, v := f.snapshot()
	checkReplicated(t, v)
	for _, c := range v.Chunks {
		if slices.Contains(c.Holders, "d") {
			t.Errorf("chunk %d still on d: %v", c.ID, c.Holders)
		}
	}
	// Chunk 1 lives only on d: both copies come from d, and d's replica
	// goes only after them.
	i1 := slices.Index(calls, "copy c1 d->a")
	i2 := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "copy c1 d->") && c != "copy c1 d->a" })
	del := slices.Index(calls, "delete c1 d@1")
	if i1 < 0 || i2 < 0 || del < i1 || del < i2 {
		t.Errorf("calls %q: want two copies of c1 from d, then its delete", calls)
	}
	if n := len(copies(calls)); n != 3 {
		t.Errorf("%d copies, want 3: %q", n, calls)
	}
}

func TestHealerReplacesCorruptThenDeletes(t *testing.T) {
	f := newFake(View{Nodes: liveNodes("a", "b", "c"), Chunks: []Chunk{
		{ID: 1, Version: 1, Length: 10, Wanted: 2, Holders: []string{"a", "b"}, Corrupt: []string{"b"}},
		// The only copy is corrupt: it is never deleted.
		{ID: 2, Version: 1, Length: 10, Wanted: 1, Holders: []string{"a"}, Corrupt: []string{"a"}},
	}})
	hs := start(t, testConfig(), f, nil)
	r := hs.until(t, "chunk 1 is healthy", idle)
	if r.Missing != 1 || !slices.Equal(r.MissingChunks, []uint64{2}) {
		t.Errorf("missing %d %v, want chunk 2", r.Missing, r.MissingChunks)
	}
	calls, _ := f.snapshot()
	if want := []string{"copy c1 a->c", "delete c1 b@1"}; !slices.Equal(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
}

func TestHealerDeletesStaleAndOrphans(t *testing.T) {
	f := newFake(View{
		Nodes: append(liveNodes("a", "b"), node("x", "r", Dead, 0, 0)),
		Chunks: []Chunk{{ID: 1, Version: 3, Wanted: 1, Holders: []string{"a"},
			Stale: []Replica{{"b", 2}, {"a", 1}, {"x", 2}}}},
		Orphans: []Orphan{{"b", 5, 1}, {"x", 6, 1}},
	})
	hs := start(t, testConfig(), f, nil)
	r := hs.p.wait(t, "deletes issued", func(r Report) bool { return r.Deleted > 0 })
	if r.Deleted != 3 {
		t.Errorf("Deleted = %d, want 3", r.Deleted)
	}
	hs.h.Kick()
	hs.p.wait(t, "a pass after the deletes", func(Report) bool { return true })
	calls, v := f.snapshot()
	want := []string{"delete c1 a@1", "delete c1 b@2", "delete c5 b@1"}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %q, want %q (each once; none to the dead node)", calls, want)
	}
	if len(v.Chunks[0].Stale) != 1 || len(v.Orphans) != 1 {
		t.Errorf("left: stale %v, orphans %v; want only those on x", v.Chunks[0].Stale, v.Orphans)
	}
	if got := hs.h.Stats().Deleted; got != 3 {
		t.Errorf("Stats().Deleted = %d, want 3", got)
	}
}

func TestHealerSafeModeDoesNothing(t *testing.T) {
	f := newFake(View{SafeMode: true, Nodes: liveNodes("a", "b", "c"),
		Chunks: []Chunk{
			chunk(1, 3, "a"),
			chunk(2, 1, "a", "b", "c"),
			{ID: 3, Version: 2, Wanted: 1, Holders: []string{"a"}, Stale: []Replica{{"b", 1}}},
		},
		Orphans: []Orphan{{"c", 9, 1}},
	})
	hs := start(t, testConfig(), f, nil)
	for i := range 3 {
		r := hs.p.wait(t, "a pass", func(Report) bool { return true })
		if !r.SafeMode || r.Started+r.Deleted+r.Queued != 0 {
			t.Errorf("pass %d in safe mode: %+v", i, r)
		}
		hs.h.Kick()
	}
	if calls, _ := f.snapshot(); len(calls) != 0 {
		t.Errorf("calls in safe mode: %q", calls)
	}
	if !hs.h.Stats().SafeMode {
		t.Error("Stats().SafeMode = false")
	}
	// Out of safe mode the same view needs work: the check above meant it.
	f.set(func(v *View) { v.SafeMode = false })
	hs.h.Kick()
	hs.until(t, "all is repaired", idle)
	if calls, _ := f.snapshot(); len(calls) != 6 {
		t.Errorf("calls after safe mode: %q, want 2 copies and 4 deletes", calls)
	}
}

func TestHealerReportsMissing(t *testing.T) {
	f := newFake(View{
		Nodes:  append(liveNodes("a", "b"), node("x", "r", Dead, 0, 0)),
		Chunks: []Chunk{chunk(7, 2, "x"), chunk(3, 2, "gone")},
	})
	hs := start(t, testConfig(), f, nil)
	for range 2 {
		r := hs.p.wait(t, "a pass", func(Report) bool { return true })
		if r.Missing != 2 || !slices.Equal(r.MissingChunks, []uint64{3, 7}) || r.UnderReplicated != 2 {
			t.Errorf("report %+v, want chunks 3 and 7 missing", r)
		}
		hs.h.Kick()
	}
	if calls, _ := f.snapshot(); len(calls) != 0 {
		t.Errorf("calls for missing chunks: %q", calls)
	}
	if s := hs.h.Stats(); s.Missing != 2 || s.UnderReplicated != 2 {
		t.Errorf("Stats %+v", s)
	}
}

func TestHealerRetriesFailedCopy(t *testing.T) {
	f := newFake(View{Nodes: liveNodes("a", "b", "c", "d"), Chunks: []Chunk{chunk(1, 2, "a")}})
	failed := false
	f.fail = func(c Chunk, to string) error {
		if !failed {
			failed = true
			return errors.New("checksum mismatch")
		}
		return nil
	}
	hs := start(t, testConfig(), f, nil)
	hs.p.wait(t, "the copy failed", func(r Report) bool { return r.Failed == 1 })
	hs.until(t, "all is replicated", idle)
	calls, v := f.snapshot()
	checkReplicated(t, v)
	if len(calls) != 2 || calls[0] == calls[1] {
		t.Errorf("calls %q: want a failed copy, then one to another target", calls)
	}
	if s := hs.h.Stats(); s.Failed != 1 || s.Copied != 1 || s.BytesCopied != 10 || s.BytesPerSecond <= 0 {
		t.Errorf("Stats %+v", s)
	}
}

func TestHealerRunWaitsForCopies(t *testing.T) {
	f := newFake(View{Nodes: liveNodes("a", "b"), Chunks: []Chunk{chunk(1, 2, "a")}})
	f.gate = make(chan struct{}) // never fed: the copy ends only with ctx
	f.entered = make(chan string, 1)
	sawCancel, release := make(chan struct{}), make(chan struct{})
	f.afterCancel = func() {
		close(sawCancel)
		<-release // the copy outlives the cancel until the test says
	}
	hs := start(t, testConfig(), f, nil)
	receive(t, f.entered, "copy")
	hs.cancel()
	receive(t, sawCancel, "cancel seen by the copy")
	select {
	case <-hs.done:
		t.Fatal("Run returned while a copy was still running")
	default:
	}
	close(release)
	if err := hs.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if hs.copyingAtReturn != 0 {
		t.Errorf("%d copies still running when Run returned", hs.copyingAtReturn)
	}
	if s := hs.h.Stats(); s.Copying != 0 || s.Failed != 0 {
		t.Errorf("Stats %+v: a canceled copy is neither running nor failed", s)
	}
}

func TestHealerKick(t *testing.T) {
	f := newFake(View{Nodes: liveNodes("a")})
	hs := start(t, testConfig(), f, nil) // Interval is an hour
	hs.p.wait(t, "the first pass", func(Report) bool { return true })
	hs.h.Kick()
	hs.h.Kick() // coalesces; never blocks
	hs.p.wait(t, "a kicked pass", func(Report) bool { return true })
	if n := hs.h.Stats().Passes; n < 2 {
		t.Errorf("Passes = %d", n)
	}
}

func TestHealerTicks(t *testing.T) {
	f := newFake(View{Nodes: liveNodes("a")})
	cfg := testConfig()
	cfg.Interval = time.Millisecond
	hs := start(t, cfg, f, nil)
	for range 3 {
		hs.p.wait(t, "a periodic pass", func(Report) bool { return true })
	}
}

// TestHealerDoesNotTrimTwice: the view still shows a replica after its
// delete was issued; the healer must not pick a second victim meanwhile,
// which would leave the chunk under-replicated.
func TestHealerDoesNotTrimTwice(t *testing.T) {
	f := newFake(View{
		Nodes: []Node{
			node("a", "r1", Live, 10, 100), node("b", "r2", Live, 20, 100),
			node("c", "r3", Live, 30, 100), node("d", "r4", Live, 90, 100),
		},
		Chunks: []Chunk{chunk(1, 3, "a", "b", "c", "d")},
	})
	f.hold = true // deletes are queued, not applied
	clk := &clock{now: time.Unix(1000, 0)}
	cfg := testConfig()
	hs := start(t, cfg, f, clk)
	hs.p.wait(t, "the trim", func(r Report) bool { return r.Deleted == 1 })
	f.set(func(v *View) { v.Nodes[2].UsedBytes = 99 }) // c is now the fullest
	for range 2 {
		hs.h.Kick()
		if r := hs.p.wait(t, "a pass", func(Report) bool { return true }); r.Deleted != 0 {
			t.Errorf("second trim while the first is outstanding: %+v", r)
		}
	}
	// After PendingTimeout the view is trusted again.
	clk.advance(cfg.PendingTimeout)
	hs.h.Kick()
	hs.p.wait(t, "the trim repeated", func(r Report) bool { return r.Deleted == 1 })
	if calls, _ := f.snapshot(); !slices.Equal(calls, []string{"delete c1 d@1", "delete c1 c@1"}) {
		t.Errorf("calls %q", calls)
	}
}

// TestHealerDoesNotCopyTwice: a finished copy the view does not show yet
// is not started again until PendingTimeout.
func TestHealerDoesNotCopyTwice(t *testing.T) {
	f := newFake(View{Nodes: liveNodes("a", "b", "c"), Chunks: []Chunk{chunk(1, 2, "a")}})
	f.hold = true // copies succeed, the view does not change
	clk := &clock{now: time.Unix(1000, 0)}
	cfg := testConfig()
	hs := start(t, cfg, f, clk)
	hs.p.wait(t, "the copy", func(r Report) bool { return r.Copied == 1 })
	for range 2 {
		hs.h.Kick()
		if r := hs.p.wait(t, "a pass", func(Report) bool { return true }); r.Started != 0 || r.UnderReplicated != 1 {
			t.Errorf("pass %+v: want the chunk under-replicated and no new copy", r)
		}
	}
	clk.advance(cfg.PendingTimeout)
	hs.h.Kick()
	hs.until(t, "the copy repeated", func(r Report) bool { return r.Copied == 1 })
	if calls, _ := f.snapshot(); len(calls) != 2 {
		t.Errorf("calls %q, want two copies", calls)
	}
}

func TestHealerBandwidthLimit(t *testing.T) {
	var nodes []Node
	for _, id := range []string{"a", "b", "c", "d"} {
		nodes = append(nodes, node(id, "r", Live, 0, 1<<20))
	}
	f := newFake(View{Nodes: nodes, Chunks: []Chunk{
		{ID: 1, Version: 1, Length: 3600, Wanted: 2, Holders: []string{"a"}},
		{ID: 2, Version: 1, Length: 3600, Wanted: 2, Holders: []string{"b"}},
	}})
	cfg := testConfig()
	cfg.BandwidthLimit = 1 // byte/s: the second copy must wait an hour
	hs := start(t, cfg, f, nil)
	hs.p.wait(t, "the first copy", func(r Report) bool { return r.Copied == 1 })
	hs.h.Kick()
	r := hs.p.wait(t, "a pass", func(Report) bool { return true })
	if calls, _ := f.snapshot(); len(calls) != 1 || r.Copying != 1 {
		t.Errorf("calls %q, copying %d: want the second copy held back", calls, r.Copying)
	}
	if err := hs.stop(t); err != nil { // the waiting copy ends with ctx
		t.Fatal(err)
	}
}

func TestHealerRunTwice(t *testing.T) {
	hs := start(t, testConfig(), newFake(View{}), nil)
	hs.p.wait(t, "a pass", func(Report) bool { return true })
	if err := hs.h.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

type failingInventory struct{}

func (failingInventory) View(context.Context) (View, error) {
	return View{}, errors.New("manager away")
}

func TestHealerInventoryError(t *testing.T) {
	p := &passes{sig: make(chan struct{}, 1)}
	cfg := testConfig()
	cfg.Log, cfg.OnPass = testlog.New(t), p.add
	f := newFake(View{})
	h, err := New(cfg, failingInventory{}, f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	r := p.wait(t, "a failed pass", func(Report) bool { return true })
	cancel()
	if err := receive(t, done, "Run's return"); err != nil {
		t.Errorf("Run: %v", err)
	}
	if r.Err == nil {
		t.Errorf("report %+v: want Err", r)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"interval", func(c *Config) { c.Interval = 0 }, "Interval"},
		{"per node", func(c *Config) { c.MaxSlotsPerNode = 0 }, "MaxSlotsPerNode"},
		{"global", func(c *Config) { c.MaxCopies = -1 }, "MaxCopies"},
		{"bandwidth", func(c *Config) { c.BandwidthLimit = -1 }, "BandwidthLimit"},
		{"pending", func(c *Config) { c.PendingTimeout = 0 }, "PendingTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Validate = %v, want ErrInvalidConfig naming %s", err, tc.field)
			}
			if _, err := New(cfg, newFake(View{}), newFake(View{})); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := New(DefaultConfig(), nil, newFake(View{})); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with nil Inventory = %v", err)
	}
}

package healer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// node makes a node; used and capacity are in bytes.
func node(id, rack string, st NodeState, used, capacity int64) Node {
	return Node{ID: id, Addr: id + ":1", Rack: rack, State: st, UsedBytes: used, CapacityBytes: capacity}
}

// liveNodes makes live nodes of equal fullness, one rack each.
func liveNodes(ids ...string) []Node {
	var out []Node
	for _, id := range ids {
		out = append(out, node(id, "r-"+id, Live, 0, 100))
	}
	return out
}

func chunk(id uint64, wanted int, holders ...string) Chunk {
	return Chunk{ID: id, Version: 1, Length: 10, Wanted: wanted, Holders: holders}
}

// fmtCopies renders copies as "c<id> <from,...>-><to>", in plan order.
func fmtCopies(cs []copyTask) []string {
	var out []string
	for _, c := range cs {
		var from []string
		for _, n := range c.from {
			from = append(from, n.ID)
		}
		out = append(out, fmt.Sprintf("c%d %s->%s", c.chunk.ID, strings.Join(from, ","), c.to.ID))
	}
	return out
}

// fmtDeletes renders deletes as "c<id> <node>@<version> <reason>".
func fmtDeletes(ds []deleteTask) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("c%d %s@%d %s", d.key.chunk, d.key.node, d.key.version, d.reason))
	}
	return out
}

func TestPlan(t *testing.T) {
	type want struct {
		copies, deletes   []string
		under, noTarget   int
		queued            int
		missing           []uint64
		draining          map[string]int
		safeMode          bool
		checkDrainingOnly bool
	}
	abcd := liveNodes("a", "b", "c", "d")
	tests := []struct {
		name string
		in   planInput
		want want
	}{
		{
			name: "healthy chunk: nothing",
			in:   planInput{view: View{Nodes: abcd, Chunks: []Chunk{chunk(1, 3, "a", "b", "c")}}},
		},
		{
			name: "fewest live replicas first, then chunk id",
			in: planInput{maxAll: 3, view: View{Nodes: liveNodes("a", "b", "c", "d", "e", "f"), Chunks: []Chunk{
				chunk(5, 3, "a", "b"),
				chunk(9, 3, "c"),
				chunk(2, 3, "d", "e"),
				chunk(7, 3, "f"),
			}}},
			// 7 and 9 have one live replica and need two copies each; the
			// global limit of 3 leaves 9's second copy and both 2-live
			// chunks queued. 9 goes to d: a and b are fuller by 7's bytes.
			want: want{under: 4, queued: 3, copies: []string{"c7 f->a", "c7 f->b", "c9 c->d"}},
		},
		{
			name: "under-replicated: sources live then draining, targets on new racks and emptiest",
			in: planInput{view: View{
				Nodes: []Node{
					node("a", "r1", Live, 10, 100), node("d", "r2", Draining, 0, 100),
					node("b", "r1", Live, 0, 100), node("c", "r3", Live, 50, 100), node("e", "r4", Live, 20, 100),
				},
				Chunks: []Chunk{chunk(1, 3, "d", "a")},
			}},
			want: want{under: 1, copies: []string{"c1 a,d->e", "c1 a,d->c"}, draining: map[string]int{"d": 1}},
		},
		{
			name: "draining replicas deleted once wanted live replicas exist elsewhere",
			in: planInput{view: View{
				Nodes:  append(liveNodes("a", "b"), node("d", "r", Draining, 0, 0)),
				Chunks: []Chunk{chunk(1, 2, "a", "d", "b")},
			}},
			want: want{deletes: []string{"c1 d@1 draining"}, draining: map[string]int{"d": 1}},
		},
		{
			name: "over-replicated: trims the fullest node of the most crowded rack",
			in: planInput{view: View{
				Nodes: []Node{
					node("a", "r1", Live, 90, 100), node("b", "r1", Live, 10, 100),
					node("c", "r2", Live, 95, 100), node("d", "r3", Live, 50, 100),
				},
				Chunks: []Chunk{chunk(1, 3, "a", "b", "c", "d")},
			}},
			want: want{deletes: []string{"c1 a@1 over-replicated"}},
		},
		{
			name: "over-replicated by two: rack spread first, then the fullest",
			in: planInput{view: View{
				Nodes: []Node{
					node("a", "r1", Live, 90, 100), node("b", "r1", Live, 10, 100),
					node("c", "r2", Live, 95, 100), node("d", "r3", Live, 50, 100),
				},
				Chunks: []Chunk{chunk(1, 2, "a", "b", "c", "d")},
			}},
			want: want{deletes: []string{"c1 a@1 over-replicated", "c1 c@1 over-replicated"}},
		},
		{
			name: "over-replicated, one rack each: the fullest goes",
			in: planInput{view: View{
				Nodes:  []Node{node("a", "r1", Live, 10, 100), node("b", "r2", Live, 70, 100), node("c", "r3", Live, 30, 100)},
				Chunks: []Chunk{chunk(1, 2, "a", "b", "c")},
			}},
			want: want{deletes: []string{"c1 b@1 over-replicated"}},
		},
		{
			name: "a delete outstanding counts as done: not trimmed twice",
			in: planInput{
				deleting: map[replicaKey]bool{{"d", 1, 1}: true},
				view:     View{Nodes: abcd, Chunks: []Chunk{chunk(1, 3, "a", "b", "c", "d")}},
			},
		},
		{
			name: "wanted below one is taken as one",
			in:   planInput{view: View{Nodes: abcd, Chunks: []Chunk{chunk(1, 0, "a", "b")}}},
			want: want{deletes: []string{"c1 b@1 over-replicated"}},
		},
		{
			name: "stale and orphans deleted, except on dead or unknown nodes",
			in: planInput{view: View{
				Nodes: append(liveNodes("a", "b"), node("x", "r", Dead, 0, 0), node("d", "r", Draining, 0, 0)),
				Chunks: []Chunk{{ID: 1, Version: 3, Wanted: 1, Holders: []string{"a"},
					Stale: []Replica{{"b", 2}, {"x", 1}, {"zz", 1}}}},
				Orphans: []Orphan{{"a", 7, 1}, {"d", 8, 2}, {"x", 9, 1}},
			}},
			want: want{deletes: []string{"c1 b@2 stale", "c7 a@1 orphan", "c8 d@2 orphan"}, draining: map[string]int{"d": 1}},
		},
		{
			name: "corrupt replica kept while it is not replaced",
			in: planInput{view: View{Nodes: abcd, Chunks: []Chunk{
				{ID: 1, Version: 1, Length: 10, Wanted: 2, Holders: []string{"a", "b"}, Corrupt: []string{"b"}},
			}}},
			want: want{under: 1, copies: []string{"c1 a->c"}},
		},
		{
			name: "corrupt replica deleted once replaced",
			in: planInput{view: View{Nodes: abcd, Chunks: []Chunk{
				{ID: 1, Version: 1, Length: 10, Wanted: 2, Holders: []string{"a", "b", "c"}, Corrupt: []string{"b"}},
			}}},
			want: want{deletes: []string{"c1 b@1 corrupt"}},
		},
		{
			name: "last copy, corrupt, never deleted: missing",
			in: planInput{view: View{Nodes: abcd, Chunks: []Chunk{
				{ID: 1, Version: 1, Wanted: 1, Holders: []string{"a"}, Corrupt: []string{"a"}},
			}}},
			want: want{under: 1, missing: []uint64{1}},
		},
		{
			name: "corrupt, no target: kept",
			in: planInput{view: View{Nodes: liveNodes("a", "b"), Chunks: []Chunk{
				{ID: 1, Version: 1, Wanted: 2, Holders: []string{"a", "b"}, Corrupt: []string{"b"}},
			}}},
			want: want{under: 1, noTarget: 1},
		},
		{
			name: "holders on dead nodes only: missing, nothing done",
			in: planInput{view: View{
				Nodes:  append(liveNodes("a", "b"), node("x", "r", Dead, 0, 0)),
				Chunks: []Chunk{chunk(4, 2, "x", "gone"), chunk(2, 1, "x")},
			}},
			want: want{under: 2, missing: []uint64{2, 4}},
		},
		{
			name: "dead holders do not count and are not targets",
			in: planInput{view: View{
				Nodes:  append(liveNodes("a"), node("x", "r", Dead, 0, 0), node("b", "r", Live, 0, 0)),
				Chunks: []Chunk{chunk(1, 3, "a", "x")},
			}},
			want: want{under: 1, noTarget: 1, copies: []string{"c1 a->b"}},
		},
		{
			name: "safe mode: nothing at all",
			in: planInput{view: View{SafeMode: true, Nodes: abcd,
				Chunks:  []Chunk{chunk(1, 3, "a"), chunk(2, 1, "a", "b"), {ID: 3, Version: 2, Wanted: 1, Holders: []string{"a"}, Stale: []Replica{{"b", 1}}}},
				Orphans: []Orphan{{"a", 9, 1}},
			}},
			want: want{safeMode: true, checkDrainingOnly: true},
		},
		{
			name: "per-node limit on the source",
			in: planInput{maxNode: 2, view: View{Nodes: abcd, Chunks: []Chunk{
				chunk(1, 2, "a"), chunk(2, 2, "a"), chunk(3, 2, "a"), chunk(4, 2, "a"),
			}}},
			want: want{under: 4, queued: 2, copies: []string{"c1 a->b", "c2 a->c"}},
		},
		{
			name: "per-node limit counts copies already running",
			in: planInput{maxNode: 2, inFlight: 3, load: map[string]int{"a": 1, "b": 2, "c": 1}, view: View{Nodes: abcd, Chunks: []Chunk{
				chunk(1, 2, "a"), chunk(2, 2, "a"),
			}}},
			want: want{under: 2, queued: 1, copies: []string{"c1 a->c"}},
		},
		{
			name: "global limit counts copies already running",
			in: planInput{maxAll: 3, inFlight: 2, view: View{Nodes: liveNodes("a", "b", "c", "d", "e"), Chunks: []Chunk{
				chunk(1, 2, "a"), chunk(2, 2, "b"),
			}}},
			want: want{under: 2, queued: 1, copies: []string{"c1 a->b"}},
		},
		{
			name: "copies running or not yet visible are not repeated",
			in: planInput{
				incoming: map[uint64][]incoming{1: {{1, "b"}}, 2: {{1, "c"}, {1, "d"}}, 3: {{0, "b"}}},
				view: View{Nodes: liveNodes("a", "b", "c", "d", "e"), Chunks: []Chunk{
					chunk(1, 3, "a"), chunk(2, 3, "a"), chunk(3, 2, "a"),
				}},
			},
			// chunk 3's incoming copy is of an older version: it does not count.
			want: want{under: 3, copies: []string{"c1 a->c", "c3 a->b"}},
		},
		{
			name: "after a failure, another target and another source",
			in: planInput{
				failed: map[uint64]failure{1: {source: "a", target: "c"}},
				view:   View{Nodes: liveNodes("a", "b", "c", "d"), Chunks: []Chunk{chunk(1, 3, "a", "b")}},
			},
			want: want{under: 1, copies: []string{"c1 b,a->d"}},
		},
		{
			name: "after a failure, the same target if it is the only one",
			in: planInput{
				failed: map[uint64]failure{1: {source: "a", target: "c"}},
				view:   View{Nodes: liveNodes("a", "c"), Chunks: []Chunk{chunk(1, 2, "a")}},
			},
			want: want{under: 1, copies: []string{"c1 a->c"}},
		},
		{
			name: "nodes without room are not targets",
			in: planInput{view: View{
				Nodes:  []Node{node("a", "r1", Live, 0, 100), node("b", "r2", Live, 95, 100), node("c", "r3", Live, 90, 100)},
				Chunks: []Chunk{chunk(1, 3, "a")},
			}},
			want: want{under: 1, noTarget: 1, copies: []string{"c1 a->c"}},
		},
		{
			name: "placement accounts for bytes placed earlier in the pass",
			in: planInput{view: View{
				Nodes:  []Node{node("a", "r", Live, 0, 100), node("b", "r", Live, 15, 100), node("c", "r", Live, 20, 100)},
				Chunks: []Chunk{chunk(1, 2, "a"), chunk(2, 2, "a")},
			}},
			want: want{under: 2, copies: []string{"c1 a->b", "c2 a->c"}},
		},
		{
			name: "a placer's bad answers are ignored",
			in: planInput{
				place: func(_ []Node, _ int, _ []Node) []Node { return []Node{{ID: "a"}, {ID: "zz"}, {ID: "b"}, {ID: "b"}, {}} },
				view:  View{Nodes: liveNodes("a", "b", "c"), Chunks: []Chunk{chunk(1, 3, "a")}},
			},
			want: want{under: 1, queued: 1, copies: []string{"c1 a->b"}},
		},
		{
			name: "drained node reported with zero replicas",
			in: planInput{view: View{
				Nodes:  append(liveNodes("a", "b"), node("d", "r", Draining, 0, 0), node("e", "r", Draining, 0, 0)),
				Chunks: []Chunk{chunk(1, 2, "a", "b", "d")},
			}},
			want: want{deletes: []string{"c1 d@1 draining"}, draining: map[string]int{"d": 1, "e": 0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.maxNode == 0 {
				tc.in.maxNode = 4
			}
			if tc.in.maxAll == 0 {
				tc.in.maxAll = 32
			}
			r := plan(tc.in)
			w := tc.want
			if got := fmtCopies(r.copies); !slices.Equal(got, w.copies) {
				t.Errorf("copies = %q, want %q", got, w.copies)
			}
			if got := fmtDeletes(r.deletes); !slices.Equal(got, w.deletes) {
				t.Errorf("deletes = %q, want %q", got, w.deletes)
			}
			if r.safeMode != w.safeMode {
				t.Errorf("safeMode = %v, want %v", r.safeMode, w.safeMode)
			}
			if r.under != w.under || r.noTarget != w.noTarget || r.queued != w.queued {
				t.Errorf("under, noTarget, queued = %d, %d, %d; want %d, %d, %d",
					r.under, r.noTarget, r.queued, w.under, w.noTarget, w.queued)
			}
			if !slices.Equal(r.missing, w.missing) {
				t.Errorf("missing = %v, want %v", r.missing, w.missing)
			}
			if w.draining == nil && !w.checkDrainingOnly {
				w.draining = map[string]int{}
			}
			if len(r.draining) != len(w.draining) {
				t.Errorf("draining = %v, want %v", r.draining, w.draining)
			}
			for id, n := range w.draining {
				if got, ok := r.draining[id]; !ok || got != n {
					t.Errorf("draining = %v, want %v", r.draining, w.draining)
				}
			}
		})
	}
}

// TestPlanDoesNotModifyInput guards the purity the healer relies on: plan
// runs on the healer's own maps and on the view's slices.
func TestPlanDoesNotModifyInput(t *testing.T) {
	in := planInput{
		maxNode: 1, maxAll: 8,
		load: map[string]int{"b": 1},
		view: View{Nodes: liveNodes("a", "b", "c", "d"), Chunks: []Chunk{chunk(1, 3, "a"), chunk(2, 3, "a", "b")}},
	}
	nodes := slices.Clone(in.view.Nodes)
	r1 := plan(in)
	if in.load["b"] != 1 || len(in.load) != 1 {
		t.Errorf("load changed: %v", in.load)
	}
	if !slices.Equal(nodes, in.view.Nodes) {
		t.Errorf("nodes changed: %v", in.view.Nodes)
	}
	r2 := plan(in)
	if !slices.Equal(fmtCopies(r1.copies), fmtCopies(r2.copies)) {
		t.Errorf("two plans differ: %q, %q", fmtCopies(r1.copies), fmtCopies(r2.copies))
	}
}

func TestDefaultPlacer(t *testing.T) {
	tests := []struct {
		name    string
		cands   []Node
		n       int
		holders []Node
		want    []string
	}{
		{
			name:    "other racks than the holders first",
			cands:   []Node{node("b", "r1", Live, 0, 100), node("c", "r2", Live, 80, 100)},
			n:       1,
			holders: []Node{node("a", "r1", Live, 0, 100)},
			want:    []string{"c"},
		},
		{
			name:  "least full first, by fraction",
			cands: []Node{node("b", "r", Live, 50, 1000), node("c", "r", Live, 40, 100), node("d", "r", Live, 0, 0)},
			n:     3,
			want:  []string{"b", "c", "d"},
		},
		{
			name: "spread over racks among the chosen too",
			cands: []Node{
				node("b", "r1", Live, 0, 100), node("c", "r1", Live, 1, 100), node("d", "r2", Live, 50, 100),
			},
			n:    2,
			want: []string{"b", "d"},
		},
		{
			name:  "distinct nodes, no more than there are",
			cands: liveNodes("b", "c"),
			n:     5,
			want:  []string{"b", "c"},
		},
		{name: "none wanted", cands: liveNodes("b"), n: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, n := range DefaultPlacer(tc.cands, tc.n, tc.holders) {
				got = append(got, n.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// BenchmarkPlan plans a view of 100,000 chunks needing work over 60 nodes
// in 6 racks: a third under-replicated, a third over-replicated, a third
// with a stale replica.
func BenchmarkPlan(b *testing.B) {
	var nodes []Node
	for i := range 60 {
		nodes = append(nodes, node(fmt.Sprintf("n%02d", i), fmt.Sprintf("r%d", i%6), Live, int64(i)<<30, 100<<30))
	}
	id := func(i int) string { return nodes[i%len(nodes)].ID }
	chunks := make([]Chunk, 100_000)
	for i := range chunks {
		c := Chunk{ID: uint64(i), Version: 2, Length: 64 << 20, Wanted: 3}
		switch i % 3 {
		case 0:
			c.Holders = []string{id(i), id(i + 7)}[:1+i%2]
		case 1:
			c.Holders = []string{id(i), id(i + 7), id(i + 13), id(i + 29)}
		case 2:
			c.Holders = []string{id(i), id(i + 7), id(i + 13)}
			c.Stale = []Replica{{id(i + 31), 1}}
		}
		chunks[i] = c
	}
	in := planInput{view: View{Nodes: nodes, Chunks: chunks}, maxNode: 4, maxAll: 32}
	b.ReportAllocs()
	for b.Loop() {
		r := plan(in)
		if len(r.copies) != 32 {
			b.Fatalf("copies = %d, want 32", len(r.copies))
		}
	}
}

// A node's slots bound bytes in flight for large chunks and the count for
// small ones: with 16 slots, a source takes part in four 64 MiB copies at
// once but sixteen 4 KiB ones.
func TestPlanSlotsWeighChunkSize(t *testing.T) {
	for _, tc := range []struct {
		length int64
		want   int
	}{
		{4 << 10, 16},
		{16 << 20, 16},
		{16<<20 + 1, 8},
		{64 << 20, 4},
		{1 << 30, 1}, // larger than every slot: one at a time, never none
	} {
		// Chunks held only by "a" (wanted 2): every copy reads from a.
		var cs []Chunk
		for i := range 40 {
			c := chunk(uint64(i+1), 2, "a")
			c.Length = tc.length
			cs = append(cs, c)
		}
		var nodes []Node
		for i := range 40 {
			nodes = append(nodes, node(fmt.Sprintf("t%02d", i), "r", Live, 0, 1<<40))
		}
		nodes = append(nodes, node("a", "ra", Live, 0, 1<<40))
		r := plan(planInput{maxNode: 16, maxAll: 100, view: View{Nodes: nodes, Chunks: cs}})
		if len(r.copies) != tc.want {
			t.Errorf("chunks of %d bytes: %d copies from one source, want %d", tc.length, len(r.copies), tc.want)
		}
	}
}

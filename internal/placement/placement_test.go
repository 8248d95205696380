package placement

import (
	"reflect"
	"testing"
)

func ids(nodes []Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

func TestChoose(t *testing.T) {
	const gib = 1 << 30
	n := func(id, rack string, used, capacity uint64) Node {
		return Node{ID: id, Rack: rack, Used: used, Capacity: capacity}
	}
	tests := []struct {
		name  string
		nodes []Node
		req   Request
		want  []string
	}{
		{
			name:  "zero wanted",
			nodes: []Node{n("a", "", 0, gib)},
			req:   Request{N: 0},
			want:  []string{},
		},
		{
			name: "no candidates",
			req:  Request{N: 3},
			want: []string{},
		},
		{
			name:  "least full first in one rack",
			nodes: []Node{n("a", "", 9, 10), n("b", "", 1, 10), n("c", "", 5, 10), n("d", "", 3, 10)},
			req:   Request{N: 3},
			want:  []string{"b", "d", "c"},
		},
		{
			name:  "fullness is a ratio, not bytes",
			nodes: []Node{n("big", "", 50*gib, 100*gib), n("small", "", 1*gib, 10*gib)},
			req:   Request{N: 1},
			want:  []string{"small"},
		},
		{
			name:  "ties broken by id",
			nodes: []Node{n("c", "", 0, 10), n("a", "", 0, 10), n("b", "", 0, 10)},
			req:   Request{N: 2},
			want:  []string{"a", "b"},
		},
		{
			name:  "fewer than wanted",
			nodes: []Node{n("a", "", 0, 10), n("b", "", 0, 10)},
			req:   Request{N: 3},
			want:  []string{"a", "b"},
		},
		{
			name:  "excluded never chosen",
			nodes: []Node{n("a", "", 0, 10), n("b", "", 5, 10), n("c", "", 6, 10)},
			req:   Request{N: 2, Exclude: []string{"a"}},
			want:  []string{"b", "c"},
		},
		{
			name:  "duplicates collapse",
			nodes: []Node{n("a", "", 0, 10), n("a", "", 0, 10), n("b", "", 5, 10)},
			req:   Request{N: 3},
			want:  []string{"a", "b"},
		},
		{
			name:  "full and capacity-less nodes skipped",
			nodes: []Node{n("full", "", 10, 10), n("over", "", 11, 10), n("none", "", 0, 0), n("ok", "", 9, 10)},
			req:   Request{N: 3},
			want:  []string{"ok"},
		},
		{
			name:  "need bytes free",
			nodes: []Node{n("a", "", 0, 100), n("b", "", 60, 100), n("c", "", 50, 100)},
			req:   Request{N: 3, Need: 50},
			want:  []string{"a", "c"},
		},
		{
			name: "spread over racks before fullness",
			nodes: []Node{
				n("r1a", "r1", 0, 10), n("r1b", "r1", 1, 10), n("r1c", "r1", 2, 10),
				n("r2a", "r2", 8, 10), n("r3a", "r3", 9, 10),
			},
			req:  Request{N: 3},
			want: []string{"r1a", "r2a", "r3a"},
		},
		{
			name: "second round of racks after all are used",
			nodes: []Node{
				n("r1a", "r1", 0, 10), n("r1b", "r1", 1, 10),
				n("r2a", "r2", 2, 10), n("r2b", "r2", 3, 10),
			},
			req:  Request{N: 4},
			want: []string{"r1a", "r2a", "r1b", "r2b"},
		},
		{
			name: "racks already holding the chunk are avoided",
			nodes: []Node{
				n("r1a", "r1", 0, 10), n("r2a", "r2", 5, 10), n("r3a", "r3", 6, 10),
			},
			req:  Request{N: 1, Racks: []string{"r1"}},
			want: []string{"r2a"},
		},
		{
			name: "existing replicas weigh per replica",
			nodes: []Node{
				n("r1a", "r1", 0, 10), n("r2a", "r2", 5, 10),
			},
			req:  Request{N: 2, Racks: []string{"r2", "r2"}},
			want: []string{"r1a", "r2a"},
		},
		{
			name: "one rack only still yields n nodes",
			nodes: []Node{
				n("a", "r1", 3, 10), n("b", "r1", 2, 10), n("c", "r1", 1, 10),
			},
			req:  Request{N: 2, Racks: []string{"r1"}},
			want: []string{"c", "b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]Node(nil), tc.nodes...)
			got := ids(Choose(in, tc.req))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Choose = %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.nodes) {
				t.Fatalf("Choose modified its input")
			}
		})
	}
}

// Pending orders nodes but never makes a node with room ineligible.
func TestChoosePending(t *testing.T) {
	nodes := []Node{
		{ID: "a", Rack: "r", Used: 0, Capacity: 100, Pending: 1 << 40},
		{ID: "b", Rack: "r", Used: 10, Capacity: 100},
	}
	got := Choose(nodes, Request{N: 1})
	if len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("Choose = %v, want b: a's pending placements make it fuller", got)
	}
	got = Choose(nodes, Request{N: 2})
	if len(got) != 2 {
		t.Fatalf("Choose(2) = %v: a node with free space but a large estimate was dropped", got)
	}
}

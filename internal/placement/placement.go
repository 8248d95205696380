package placement

import (
	"sort"
)

// Node is a candidate chunkserver.
type Node struct {
	ID       string
	Rack     string
	Used     uint64 // bytes used
	Capacity uint64 // bytes offered
	// Pending estimates bytes placed on the node since Used was measured.
	// It orders nodes (a burst of placements spreads out) but does not
	// count against free space: an estimate must never make a node with
	// room look full.
	Pending uint64
}

// free returns the bytes still free on n.
func (n Node) free() uint64 {
	if n.Used >= n.Capacity {
		return 0
	}
	return n.Capacity - n.Used
}

// fullness is (used+pending)/capacity; a node without capacity counts as
// full.
func (n Node) fullness() float64 {
	if n.Capacity == 0 {
		return 1
	}
	return float64(n.Used+n.Pending) / float64(n.Capacity)
}

// Request says how many nodes to choose and what to avoid.
type Request struct {
	// N is how many nodes are wanted.
	N int
	// Exclude lists node ids that must not be chosen (they already hold
	// the chunk, or the client could not reach them).
	Exclude []string
	// Racks lists the rack of every replica that already exists, one entry
	// per replica, so new picks go to other racks first.
	Racks []string
	// Need is the free space, in bytes, a node must have; 0 means any
	// node with some free space.
	Need uint64
}

// Choose returns at most req.N distinct nodes from candidates, following the
// policy in the package documentation. It returns fewer when fewer are
// eligible; the caller decides whether that is enough. candidates is not
// modified.
func Choose(candidates []Node, req Request) []Node {
	if req.N <= 0 {
		return nil
	}
	need := req.Need
	if need == 0 {
		need = 1
	}
	skip := make(map[string]bool, len(req.Exclude)+len(candidates))
	for _, id := range req.Exclude {
		skip[id] = true
	}
	eligible := make([]Node, 0, len(candidates))
	for _, n := range candidates {
		if skip[n.ID] || n.free() < need {
			continue
		}
		skip[n.ID] = true // distinct ids even if candidates repeat one
		eligible = append(eligible, n)
	}
	sort.SliceStable(eligible, func(i, j int) bool {
		fi, fj := eligible[i].fullness(), eligible[j].fullness()
		if fi != fj {
			return fi < fj
		}
		return eligible[i].ID < eligible[j].ID
	})

	perRack := make(map[string]int, len(req.Racks)+len(eligible))
	for _, r := range req.Racks {
		perRack[r]++
	}
	chosen := make([]Node, 0, min(req.N, len(eligible)))
	taken := make([]bool, len(eligible))
	for len(chosen) < req.N {
		best := -1
		for i, n := range eligible {
			if taken[i] {
				continue
			}
			// eligible is sorted least full first, so the first node of a
			// least-loaded rack wins.
			if best < 0 || perRack[n.Rack] < perRack[eligible[best].Rack] {
				best = i
			}
		}
		if best < 0 {
			break
		}
		taken[best] = true
		perRack[eligible[best].Rack]++
		chosen = append(chosen, eligible[best])
	}
	return chosen
}

package healer

import "github.com/shoalfs/shoal/internal/placement"

// fullness is the fraction of a node's capacity in use; a node of unknown
// capacity counts as full, so it is placed on last and trimmed first.
func fullness(n *Node) float64 {
	if n.CapacityBytes <= 0 {
		return 1
	}
	return float64(n.UsedBytes) / float64(n.CapacityBytes)
}

// hasRoom reports whether n can take length more bytes. Unknown capacity
// is taken as room.
func hasRoom(n *Node, length int64) bool {
	return n.CapacityBytes <= 0 || n.CapacityBytes-n.UsedBytes >= length
}

// emptier reports whether a should be filled before b: less full, then
// fewer bytes used, then lower id (for determinism).
func emptier(a, b *Node) bool {
	fa, fb := fullness(a), fullness(b)
	if fa != fb {
		return fa < fb
	}
	if a.UsedBytes != b.UsedBytes {
		return a.UsedBytes < b.UsedBytes
	}
	return a.ID < b.ID
}

// DefaultPlacer is the Placer used when Config.Place is nil: the same
// policy the manager places new chunks with (internal/placement): distinct
// nodes, racks holding the fewest replicas first, then the least full. A
// node of unknown capacity counts as having room but goes last.
func DefaultPlacer(candidates []Node, n int, holders []Node) []Node {
	byID := make(map[string]Node, len(candidates))
	cands := make([]placement.Node, 0, len(candidates))
	for _, c := range candidates {
		byID[c.ID] = c
		pn := placement.Node{ID: c.ID, Rack: c.Rack, Used: uint64(max(c.UsedBytes, 0)), Capacity: uint64(c.CapacityBytes)}
		if c.CapacityBytes <= 0 {
			pn.Used, pn.Capacity = unknownCapacity-1, unknownCapacity // room for anything, fullest of all
		}
		cands = append(cands, pn)
	}
	racks := make([]string, 0, len(holders))
	for _, h := range holders {
		racks = append(racks, h.Rack)
	}
	var out []Node
	for _, p := range placement.Choose(cands, placement.Request{N: n, Racks: racks}) {
		out = append(out, byID[p.ID])
	}
	return out
}

// unknownCapacity stands in for a node that has not reported capacity.
const unknownCapacity = 1 << 62

// chooseVictims picks k of live to delete from an over-replicated chunk:
// each time from a rack that holds the most of the remaining replicas (so
// the rack spread survives), the fullest node first. It returns at most
// len(live) nodes; the caller keeps k <= len(live)-wanted.
func chooseVictims(live []*Node, k int) []*Node {
	if k <= 0 {
		return nil
	}
	racks := make(map[string]int, len(live))
	for _, n := range live {
		racks[n.Rack]++
	}
	left := append([]*Node(nil), live...)
	var out []*Node
	for ; k > 0 && len(left) > 0; k-- {
		best := 0
		for i := 1; i < len(left); i++ {
			c, b := left[i], left[best]
			if rc, rb := racks[c.Rack], racks[b.Rack]; rc != rb {
				if rc > rb {
					best = i
				}
				continue
			}
			if emptier(b, c) {
				best = i
			}
		}
		v := left[best]
		racks[v.Rack]--
		left = append(left[:best], left[best+1:]...)
		out = append(out, v)
	}
	return out
}

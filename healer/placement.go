package healer

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

// DefaultPlacer is the Placer used when Config.Place is nil: distinct
// nodes, racks holding the fewest replicas (holders plus those already
// chosen) first, then the least full.
func DefaultPlacer(candidates []Node, n int, holders []Node) []Node {
	if n <= 0 || len(candidates) == 0 {
		return nil
	}
	racks := make(map[string]int, len(holders)+n)
	for i := range holders {
		racks[holders[i].Rack]++
	}
	used := make([]bool, len(candidates))
	out := make([]Node, 0, min(n, len(candidates)))
	for len(out) < n {
		best := -1
		for i := range candidates {
			if used[i] {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			c, b := &candidates[i], &candidates[best]
			if rc, rb := racks[c.Rack], racks[b.Rack]; rc != rb {
				if rc < rb {
					best = i
				}
				continue
			}
			if emptier(c, b) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		used[best] = true
		racks[candidates[best].Rack]++
		out = append(out, candidates[best])
	}
	return out
}

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

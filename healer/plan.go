package healer

import (
	"cmp"
	"slices"
)

// replicaKey names one replica.
type replicaKey struct {
	node    string
	chunk   uint64
	version uint64
}

// failure remembers a chunk's last failed copy, so the retry prefers
// another source and another target.
type failure struct {
	source, target string
}

// incoming is a copy of a chunk version to a target that is running, or
// finished but not in the view yet.
type incoming struct {
	version uint64
	target  string
}

// deleteReason says why a replica is deleted (for logs and tests).
type deleteReason string

const (
	reasonStale   deleteReason = "stale"
	reasonOrphan  deleteReason = "orphan"
	reasonCorrupt deleteReason = "corrupt"
	reasonDrain   deleteReason = "draining"
	reasonExtra   deleteReason = "over-replicated"
)

type copyTask struct {
	chunk Chunk
	from  []Node // from[0] is the source charged with the copy
	to    Node
}

type deleteTask struct {
	key    replicaKey
	reason deleteReason
}

// planInput is everything a pass decides from: the view plus the healer's
// own bookkeeping. plan does not modify it.
type planInput struct {
	view     View
	incoming map[uint64][]incoming // by chunk id
	deleting map[replicaKey]bool   // deletes issued and not yet gone from the view
	failed   map[uint64]failure    // by chunk id
	load     map[string]int        // copies each node takes part in now
	inFlight int                   // copies running now
	maxNode  int                   // Config.MaxSlotsPerNode
	maxAll   int                   // Config.MaxCopies
	place    Placer
}

// planResult is what one pass does and what it saw.
type planResult struct {
	safeMode bool
	copies   []copyTask   // to start now, most at risk first
	deletes  []deleteTask // sorted by chunk, node, version
	under    int          // chunks with fewer live replicas than wanted
	missing  []uint64     // chunks with no readable replica, ascending
	noTarget int          // copies wanted for which no eligible target exists
	queued   int          // copies with a target but no free slot this pass
	draining map[string]int
}

// underItem is an under-replicated chunk waiting for copies.
type underItem struct {
	c       *Chunk
	live    []*Node // live, readable replicas
	sources []*Node // live then draining readable replicas
	coming  []string
	need    int
}

// plan decides one pass. It is a pure function of its input: the same
// input gives the same result, which the tests rely on.
//
// Deletes depend only on replicas the view shows (never on copies in
// flight), and a replica with a delete outstanding counts as gone, so two
// passes never trim the same chunk twice. Copies go to the chunks with the
// fewest live replicas first, within the per-node and global copy limits.
func plan(in planInput) planResult {
	var r planResult
	if in.view.SafeMode {
		r.safeMode = true
		return r
	}
	nodes := make(map[string]*Node, len(in.view.Nodes))
	var liveNodes []*Node
	r.draining = make(map[string]int)
	for i := range in.view.Nodes {
		n := in.view.Nodes[i] // a copy: plan adds placed bytes to UsedBytes
		nodes[n.ID] = &n
		switch n.State {
		case Live:
			liveNodes = append(liveNodes, &n)
		case Draining:
			r.draining[n.ID] = 0
		}
	}
	slices.SortFunc(liveNodes, func(a, b *Node) int { return cmp.Compare(a.ID, b.ID) })

	gone := func(node string, chunk, version uint64) bool {
		return in.deleting[replicaKey{node, chunk, version}]
	}
	del := func(node string, chunk, version uint64, why deleteReason) {
		r.deletes = append(r.deletes, deleteTask{replicaKey{node, chunk, version}, why})
	}
	countDraining := func(node string) {
		if _, ok := r.draining[node]; ok {
			r.draining[node]++
		}
	}

	var under []underItem
	for i := range in.view.Chunks {
		c := &in.view.Chunks[i]
		wanted := max(c.Wanted, 1)
		var live, drain []*Node
		for _, id := range c.Holders {
			countDraining(id)
			n := nodes[id]
			if n == nil || gone(id, c.ID, c.Version) || slices.Contains(c.Corrupt, id) {
				continue
			}
			switch n.State {
			case Live:
				live = append(live, n)
			case Draining:
				drain = append(drain, n)
			}
		}

		if len(live) >= wanted {
			// Enough live replicas without them: corrupt and draining
			// replicas can go, and the extras above wanted.
			for _, id := range c.Holders {
				n := nodes[id]
				if n == nil || n.State == Dead || gone(id, c.ID, c.Version) {
					continue
				}
				switch {
				case slices.Contains(c.Corrupt, id):
					del(id, c.ID, c.Version, reasonCorrupt)
				case n.State == Draining:
					del(id, c.ID, c.Version, reasonDrain)
				}
			}
			for _, v := range chooseVictims(live, len(live)-wanted) {
				del(v.ID, c.ID, c.Version, reasonExtra)
			}
		}

		for _, s := range c.Stale {
			countDraining(s.Node)
			if n := nodes[s.Node]; n != nil && n.State != Dead && !gone(s.Node, c.ID, s.Version) {
				del(s.Node, c.ID, s.Version, reasonStale)
			}
		}

		if len(live) >= wanted {
			continue
		}
		r.under++
		if len(live)+len(drain) == 0 {
			r.missing = append(r.missing, c.ID)
			continue
		}
		var coming []string
		for _, x := range in.incoming[c.ID] {
			if x.version == c.Version {
				coming = append(coming, x.target)
			}
		}
		if need := wanted - len(live) - len(coming); need > 0 {
			under = append(under, underItem{c: c, live: live, sources: slices.Concat(live, drain), coming: coming, need: need})
		}
	}

	for _, o := range in.view.Orphans {
		countDraining(o.Node)
		if n := nodes[o.Node]; n != nil && n.State != Dead && !gone(o.Node, o.ChunkID, o.Version) {
			del(o.Node, o.ChunkID, o.Version, reasonOrphan)
		}
	}

	slices.SortFunc(under, func(a, b underItem) int {
		if c := cmp.Compare(len(a.live), len(b.live)); c != 0 {
			return c
		}
		return cmp.Compare(a.c.ID, b.c.ID)
	})
	s := scheduler{in: in, nodes: nodes, liveNodes: liveNodes, load: make(map[string]int, len(in.load)), inFlight: in.inFlight, r: &r}
	for id, n := range in.load {
		s.load[id] = n
	}
	if s.in.place == nil {
		s.in.place = DefaultPlacer
	}
	for i := range under {
		s.schedule(&under[i])
	}

	slices.Sort(r.missing)
	slices.SortFunc(r.deletes, func(a, b deleteTask) int {
		if c := cmp.Compare(a.key.chunk, b.key.chunk); c != 0 {
			return c
		}
		if c := cmp.Compare(a.key.node, b.key.node); c != 0 {
			return c
		}
		return cmp.Compare(a.key.version, b.key.version)
	})
	return r
}

// scheduler places the copies of one pass within the copy limits.
type scheduler struct {
	in        planInput
	nodes     map[string]*Node
	liveNodes []*Node // sorted by id
	load      map[string]int
	inFlight  int
	r         *planResult
}

// SlotBytes is how much chunk one copy slot stands for: a copy takes
// one slot per SlotBytes of its chunk, and at least one. A node's slots
// (Config.MaxSlotsPerNode) so bound the bytes it moves at once, not just
// the count: four 64 MiB copies fill 16 slots, as do sixteen small ones.
const SlotBytes = 16 << 20

// slots is the number of copy slots a copy of a chunk of length takes.
func slots(length int64) int { return max(1, int((length+SlotBytes-1)/SlotBytes)) }

// free reports whether node id has room for a copy taking w slots. An idle
// node always has: a chunk larger than all its slots still gets copied.
func (s *scheduler) free(id string, w int) bool {
	return s.load[id] == 0 || s.load[id]+w <= s.in.maxNode
}

func (s *scheduler) schedule(u *underItem) {
	c := u.c
	fail, failed := s.in.failed[c.ID]

	// Eligible targets: live, not holding the chunk in any state, not
	// already receiving it, with room. After a failure, the failed target
	// only if there is no other.
	eligible := func(n *Node) bool {
		return !slices.Contains(c.Holders, n.ID) && !slices.Contains(u.coming, n.ID) && hasRoom(n, c.Length)
	}
	if s.inFlight >= s.in.maxAll {
		// No slot this pass: only count, without building anything.
		count := 0
		for _, n := range s.liveNodes {
			if eligible(n) {
				count++
			}
		}
		placeable := min(u.need, count)
		s.r.noTarget += u.need - placeable
		s.r.queued += placeable
		return
	}
	var cands []*Node
	avoided := false
	for _, n := range s.liveNodes {
		if !eligible(n) {
			continue
		}
		if failed && n.ID == fail.target {
			avoided = true
			continue
		}
		cands = append(cands, n)
	}
	if avoided && len(cands) < u.need {
		cands = append(cands, s.nodes[fail.target])
	}
	placeable := min(u.need, len(cands))
	s.r.noTarget += u.need - placeable
	if placeable == 0 {
		return
	}

	// Sources in preference order: live, then draining; the last failed
	// source goes last.
	srcs := u.sources
	if failed {
		if i := slices.IndexFunc(srcs, func(n *Node) bool { return n.ID == fail.source }); i >= 0 && len(srcs) > 1 {
			srcs = append(append(append([]*Node(nil), srcs[:i]...), srcs[i+1:]...), srcs[i])
		}
	}
	w := slots(c.Length)
	freeSrc := func() int { return slices.IndexFunc(srcs, func(n *Node) bool { return s.free(n.ID, w) }) }

	var open []Node
	for _, n := range cands {
		if s.free(n.ID, w) {
			open = append(open, *n)
		}
	}
	n := min(placeable, s.in.maxAll-s.inFlight, len(open))
	if n <= 0 || freeSrc() < 0 {
		s.r.queued += placeable
		return
	}
	holders := make([]Node, 0, len(u.live)+len(u.coming))
	for _, h := range u.live {
		holders = append(holders, *h)
	}
	for _, id := range u.coming {
		if h := s.nodes[id]; h != nil {
			holders = append(holders, *h)
		}
	}

	started := 0
	for _, t := range s.in.place(open, n, holders) {
		if started == n {
			break
		}
		i := slices.IndexFunc(open, func(o Node) bool { return o.ID == t.ID && t.ID != "" })
		si := freeSrc()
		if i < 0 || si < 0 {
			continue // not a candidate (bad placer), or no source left
		}
		open[i].ID = "" // each candidate at most once
		to, src := s.nodes[t.ID], srcs[si]
		from := make([]Node, 0, len(srcs))
		from = append(from, *src)
		for _, o := range srcs {
			if o != src {
				from = append(from, *o)
			}
		}
		s.load[src.ID] += w
		s.load[to.ID] += w
		s.inFlight++
		to.UsedBytes += c.Length
		s.r.copies = append(s.r.copies, copyTask{chunk: *c, from: from, to: *to})
		started++
	}
	s.r.queued += placeable - started
}

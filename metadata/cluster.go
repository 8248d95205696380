package metadata

import (
	"slices"
	"sort"
	"time"

	"github.com/shoalfs/shoal/internal/placement"
)

// cluster is the manager's soft state: which chunkservers are alive, which
// replicas they hold, allocations in flight and deletes waiting for a
// heartbeat. None of it is persisted except the node identities (in
// Badger, mirrored in node.rec); after a restart it is rebuilt from the
// chunkservers' full reports, as GFS does.
//
// All fields are guarded by Manager.mu. Lock order: Manager.mu may be held
// while running a read-only Badger transaction (store.view), never the
// other way round: no code takes Manager.mu inside a transaction closure,
// and no read-write transaction runs under Manager.mu.
type cluster struct {
	nodes map[string]*node
	byIdx []*node // node.idx -> node; append-only

	// replicas maps a chunk to every replica the chunkservers reported, at
	// any version, including replicas on dead nodes.
	replicas map[ChunkID][]replica
	// pending lists allocated chunk versions not yet committed. Their
	// replicas are never treated as orphans or stale; a commit must match
	// one (see CommitChunks).
	pending map[ChunkID][]pendingVersion
	// corrupt records chunks a replica of which was reported corrupt, at
	// that version; Fsck calls a chunk with no live replica left corrupt
	// rather than missing when it is marked at its current version.
	corrupt map[ChunkID]uint64

	// safeMode is set at Open when the registry is not empty, and cleared
	// once every registered node has reported or DeadAfter has passed.
	safeMode bool
	// expect lists the nodes safe mode waits for.
	expect map[string]bool
}

// node is a chunkserver as the manager knows it.
type node struct {
	idx uint32
	id  string
	rec nodeRecord // persisted identity; rec.Capacity is the last reported

	used uint64 // as last reported
	// placed estimates the bytes allocated on the node since its last
	// report (a chunk size per allocation), so that a burst of writes
	// between two heartbeats spreads over the nodes instead of piling onto
	// the ones that looked emptiest. It orders placement only and never
	// counts as used space; every report resets it.
	placed     uint64
	lastSeen   time.Time // last register or heartbeat; zero if none since Open
	registered bool      // a full report was taken since Open or since it was last found dead
	dead       bool      // last liveness verdict, for logging transitions
	chunks     int       // replica entries in cluster.replicas

	deletes map[chunkVersion]struct{} // replicas to delete, sent with the next heartbeat reply
}

type replica struct {
	node    uint32 // node.idx
	version uint64
}

type chunkVersion struct {
	chunk   ChunkID
	version uint64
}

type pendingVersion struct {
	version uint64
	base    uint64 // the version the writer builds on; 0 for a new chunk
	at      time.Time
}

// pendingTTL is how long an allocation stays valid. Past it a commit of
// that version is refused and its replicas are garbage.
const pendingTTL = 30 * time.Minute

func newCluster() cluster {
	return cluster{
		nodes:    make(map[string]*node),
		replicas: make(map[ChunkID][]replica),
		pending:  make(map[ChunkID][]pendingVersion),
		corrupt:  make(map[ChunkID]uint64),
		expect:   make(map[string]bool),
	}
}

// addNode returns the node with id, creating it if needed.
func (c *cluster) addNode(id string, rec nodeRecord) *node {
	if n, ok := c.nodes[id]; ok {
		return n
	}
	n := &node{idx: uint32(len(c.byIdx)), id: id, rec: rec, deletes: make(map[chunkVersion]struct{})}
	c.nodes[id] = n
	c.byIdx = append(c.byIdx, n)
	return n
}

func (c *cluster) addReplica(id ChunkID, n *node, version uint64) {
	rs := c.replicas[id]
	for _, r := range rs {
		if r.node == n.idx && r.version == version {
			return
		}
	}
	c.replicas[id] = append(rs, replica{node: n.idx, version: version})
	n.chunks++
}

func (c *cluster) removeReplica(id ChunkID, n *node, version uint64) bool {
	rs := c.replicas[id]
	for i, r := range rs {
		if r.node == n.idx && r.version == version {
			rs = slices.Delete(rs, i, i+1)
			if len(rs) == 0 {
				delete(c.replicas, id)
			} else {
				c.replicas[id] = rs
			}
			n.chunks--
			return true
		}
	}
	return false
}

// removeNodeReplicas forgets every replica of n (before a full report).
// It walks the whole map: registrations are rare.
func (c *cluster) removeNodeReplicas(n *node) {
	if n.chunks == 0 {
		return
	}
	for id, rs := range c.replicas {
		kept := rs[:0]
		for _, r := range rs {
			if r.node != n.idx {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			delete(c.replicas, id)
		} else {
			c.replicas[id] = kept
		}
	}
	n.chunks = 0
}

// queueDelete forgets a replica and queues its deletion on its node.
func (c *cluster) queueDelete(n *node, id ChunkID, version uint64) {
	c.removeReplica(id, n, version)
	n.deletes[chunkVersion{id, version}] = struct{}{}
}

// dropChunks forgets chunks that left the namespace and queues the
// deletion of every replica they had.
func (c *cluster) dropChunks(ids []ChunkID) {
	for _, id := range ids {
		for _, r := range slices.Clone(c.replicas[id]) {
			c.queueDelete(c.byIdx[r.node], id, r.version)
		}
		delete(c.corrupt, id)
	}
}

// isPending reports whether (id, version) is an allocation in flight.
func (c *cluster) isPending(id ChunkID, version uint64) bool {
	for _, p := range c.pending[id] {
		if p.version == version {
			return true
		}
	}
	return false
}

// maxPending returns the highest version allocated and not committed.
func (c *cluster) maxPending(id ChunkID) uint64 {
	var v uint64
	for _, p := range c.pending[id] {
		v = max(v, p.version)
	}
	return v
}

// takePending removes the pending allocation (id, version), reporting
// whether it existed and its base.
func (c *cluster) takePending(id ChunkID, version uint64) (pendingVersion, bool) {
	ps := c.pending[id]
	for i, p := range ps {
		if p.version == version {
			ps = slices.Delete(ps, i, i+1)
			if len(ps) == 0 {
				delete(c.pending, id)
			} else {
				c.pending[id] = ps
			}
			return p, true
		}
	}
	return pendingVersion{}, false
}

// alive reports whether n counts as live at now.
func (m *Manager) aliveLocked(n *node, now time.Time) bool {
	return n.registered && now.Sub(n.lastSeen) <= m.cfg.DeadAfter
}

// holdersLocked returns the live nodes holding chunk id at version,
// ordered best first for readers: nodes that are not draining first, then
// least full (used/capacity), then by id. Dead nodes are left out.
func (m *Manager) holdersLocked(id ChunkID, version uint64, now time.Time) []*node {
	var out []*node
	for _, r := range m.cl.replicas[id] {
		if r.version != version {
			continue
		}
		if n := m.cl.byIdx[r.node]; m.aliveLocked(n, now) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.rec.Draining != b.rec.Draining {
			return !a.rec.Draining
		}
		fa, fb := fullness(a), fullness(b)
		if fa != fb {
			return fa < fb
		}
		return a.id < b.id
	})
	return out
}

func fullness(n *node) float64 {
	if n.rec.Capacity == 0 {
		return 1
	}
	return float64(n.used) / float64(n.rec.Capacity)
}

// candidatesLocked returns the nodes placement may choose from: live and
// not draining.
func (m *Manager) candidatesLocked(now time.Time) []placement.Node {
	out := make([]placement.Node, 0, len(m.cl.byIdx))
	for _, n := range m.cl.byIdx {
		if m.aliveLocked(n, now) && !n.rec.Draining {
			out = append(out, placement.Node{ID: n.id, Rack: n.rec.Rack, Used: n.used, Capacity: n.rec.Capacity, Pending: n.placed})
		}
	}
	return out
}

// chunkHealth classifies a chunk whose current version is version and
// wanted replication wanted. good counts replicas at that version on live
// nodes that are not draining; live also counts draining ones.
//
//   - missing:  no live replica (corrupt instead if a replica was reported
//     corrupt at this version);
//   - under:    0 < good < wanted (a chunk only on draining nodes is under,
//     not missing);
//   - over:     good > wanted;
//   - healthy:  otherwise.
func (m *Manager) chunkHealthLocked(id ChunkID, version uint64, wanted int, now time.Time) (health string, live, good int) {
	for _, r := range m.cl.replicas[id] {
		if r.version != version {
			continue
		}
		n := m.cl.byIdx[r.node]
		if !m.aliveLocked(n, now) {
			continue
		}
		live++
		if !n.rec.Draining {
			good++
		}
	}
	switch {
	case live == 0:
		if v, ok := m.cl.corrupt[id]; ok && v == version {
			return HealthCorrupt, live, good
		}
		return HealthMissing, live, good
	case good < wanted:
		return HealthUnder, live, good
	case good > wanted:
		return HealthOver, live, good
	}
	return HealthOK, live, good
}

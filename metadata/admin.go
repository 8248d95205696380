package metadata

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"time"
)

// Replica names one replica: a chunk version on a node.
type Replica struct {
	Node    string
	Chunk   ChunkID
	Version uint64
}

// ChunkState is one committed chunk as the healer sees it.
type ChunkState struct {
	Chunk   ChunkID
	Ino     Ino    // the file it belongs to
	Index   uint64 // its index in that file
	Version uint64 // the committed version
	Length  uint64
	Wanted  int
	// Holders are the nodes with a replica at Version, in any state: look
	// their state up in Snapshot.Nodes.
	Holders []string
	// Stale are replicas at other versions that no write in flight owns.
	Stale []Replica
	// Writing is set while a newer version is allocated and uncommitted;
	// a healer should leave the chunk alone until it settles.
	Writing bool
}

// Snapshot is a consistent picture of the cluster for the healer: taken
// under the manager's soft-state lock, with the chunk records read in one
// Badger transaction.
type Snapshot struct {
	Taken    time.Time
	SafeMode bool // the picture is incomplete; do not heal
	Nodes    []NodeInfo
	Chunks   []ChunkState // by chunk id
	// Orphans are replicas of chunks the namespace no longer has (and no
	// write in flight owns), by chunk id.
	Orphans []Replica
}

// Snapshot returns the nodes and every committed chunk with its replicas.
// It holds the soft-state lock for the whole scan (heartbeats wait), so it
// costs O(chunks): call it once per healer pass, not per chunk.
func (m *Manager) Snapshot(ctx context.Context) (Snapshot, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkSafeModeLocked(now); err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Taken: now, SafeMode: m.cl.safeMode}
	ids := make([]ChunkID, 0, len(m.cl.replicas))
	for id := range m.cl.replicas {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	orphans := func(id ChunkID) {
		for _, r := range m.cl.replicas[id] {
			if !m.cl.isPending(id, r.version) {
				snap.Orphans = append(snap.Orphans, Replica{Node: m.cl.byIdx[r.node].id, Chunk: id, Version: r.version})
			}
		}
	}
	j := 0
	needed := make(map[uint32]bool)
	err := m.scanChunksLocked(func(id ChunkID, rec chunkRecord) error {
		for ; j < len(ids) && ids[j] < id; j++ {
			orphans(ids[j])
		}
		if j < len(ids) && ids[j] == id {
			j++
		}
		cs := ChunkState{Chunk: id, Ino: rec.Ino, Index: rec.Index, Version: rec.Version, Length: rec.Length,
			Wanted: int(rec.Wanted), Writing: m.cl.maxPending(id) > rec.Version}
		for _, r := range m.cl.replicas[id] {
			n := m.cl.byIdx[r.node]
			switch {
			case r.version == rec.Version:
				cs.Holders = append(cs.Holders, n.id)
			case !m.cl.isPending(id, r.version):
				cs.Stale = append(cs.Stale, Replica{Node: n.id, Chunk: id, Version: r.version})
			}
		}
		m.markNeededLocked(id, rec, now, needed)
		snap.Chunks = append(snap.Chunks, cs)
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("metadata: snapshot: %w", err)
	}
	for ; j < len(ids); j++ {
		orphans(ids[j])
	}
	snap.Nodes = m.nodeInfosLocked(now, needed)
	return snap, nil
}

// QueueDelete makes the next heartbeat reply of node carry the deletion
// of replica (chunk, version), and forgets the replica at once so it no
// longer counts. Deleting a replica that is not there is harmless.
func (m *Manager) QueueDelete(node string, chunk ChunkID, version uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.cl.nodes[node]
	if n == nil {
		return notFound("metadata: queue delete on node %q", node)
	}
	m.cl.queueDelete(n, chunk, version)
	return nil
}

// scanChunksLocked calls fn with every chunk record, in id order.
func (m *Manager) scanChunksLocked(fn func(id ChunkID, rec chunkRecord) error) error {
	return m.st.view(func(t tx) error {
		return t.scan(allPrefix(prefixChunk), nil, true, func(k, v []byte) error {
			id, err := decodeChunkKey(k)
			if err != nil {
				return err
			}
			rec, err := decodeChunk(v)
			if err != nil {
				return fmt.Errorf("chunk %d: %w", id, err)
			}
			return fn(id, rec)
		})
	})
}

// markNeededLocked marks the draining nodes a chunk still needs: it has
// fewer good replicas than wanted and they hold its current version.
func (m *Manager) markNeededLocked(id ChunkID, rec chunkRecord, now time.Time, needed map[uint32]bool) {
	_, _, good := m.chunkHealthLocked(id, rec.Version, int(rec.Wanted), now)
	if good >= int(rec.Wanted) {
		return
	}
	for _, r := range m.cl.replicas[id] {
		if r.version == rec.Version && m.cl.byIdx[r.node].rec.Draining {
			needed[r.node] = true
		}
	}
}

// nodeInfosLocked describes every node, by id. needed lists the draining
// nodes some chunk still needs (draining, not drained).
func (m *Manager) nodeInfosLocked(now time.Time, needed map[uint32]bool) []NodeInfo {
	out := make([]NodeInfo, 0, len(m.cl.byIdx))
	for _, n := range m.cl.byIdx {
		ni := NodeInfo{ID: n.id, Addr: n.rec.Addr, Rack: n.rec.Rack, Chunks: n.chunks,
			Used: n.used, Capacity: n.rec.Capacity, LastHeartbeat: n.lastSeen}
		switch {
		case !m.aliveLocked(n, now):
			ni.State = NodeDead
		case n.rec.Draining && needed[n.idx]:
			ni.State = NodeDraining
		case n.rec.Draining:
			ni.State = NodeDrained
		default:
			ni.State = NodeLive
		}
		out = append(out, ni)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Status summarizes the cluster: nodes, counts and chunk health. It scans
// every chunk record under the soft-state lock.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkSafeModeLocked(now); err != nil {
		return Status{}, err
	}
	s := Status{Files: uint64(m.files.Load()), SafeMode: m.cl.safeMode, Replication: m.cfg.Replication}
	needed := make(map[uint32]bool)
	err := m.scanChunksLocked(func(id ChunkID, rec chunkRecord) error {
		s.Chunks++
		health, _, _ := m.chunkHealthLocked(id, rec.Version, int(rec.Wanted), now)
		switch health {
		case HealthUnder:
			s.UnderReplicated++
		case HealthMissing, HealthCorrupt:
			s.Missing++
		case HealthOver:
			s.OverReplicated++
		}
		m.markNeededLocked(id, rec, now, needed)
		return nil
	})
	if err != nil {
		return Status{}, fmt.Errorf("metadata: status: %w", err)
	}
	s.Nodes = m.nodeInfosLocked(now, needed)
	if fn := m.healer.Load(); fn != nil {
		h := (*fn)()
		s.Healer = &h
	}
	return s, nil
}

// defaultFsckLimit is the number of problem rows Fsck returns by default.
const defaultFsckLimit = 1000

// Fsck checks the subtree at ino (0: everything): it counts the regular
// files (each once, however many links) and their chunks, and classifies
// each chunk healthy, under-replicated, over-replicated, missing (no live
// replica of its current version) or corrupt (no live replica, and one was
// reported corrupt at that version). Up to limit problems (0: 1000) are
// listed with the file's path.
func (m *Manager) Fsck(ctx context.Context, ino Ino, limit int) (FsckReport, error) {
	if ino == 0 {
		ino = RootIno
	}
	if limit <= 0 {
		limit = defaultFsckLimit
	}
	var r FsckReport
	err := m.st.view(func(t tx) error {
		start, err := t.inode(ino)
		if err != nil {
			return err
		}
		p, err := pathOf(t, start)
		if err != nil {
			return err
		}
		seen := make(map[Ino]bool) // files with more than one link, counted once
		type dir struct {
			ino  Ino
			path string
		}
		checkFile := func(a Attr, p string) error {
			if a.Nlink > 1 {
				if seen[a.Ino] {
					return nil
				}
				seen[a.Ino] = true
			}
			r.Files++
			return m.fsckFile(t, a, p, limit, &r)
		}
		if !start.IsDir() {
			if start.IsRegular() {
				return checkFile(start, p)
			}
			return nil
		}
		stack := []dir{{ino, p}}
		for len(stack) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			err := t.scan(direntPrefix(d.ino), nil, true, func(k, v []byte) error {
				_, name, err := decodeDirentKey(k)
				if err != nil {
					return err
				}
				e, err := decodeDirent(v)
				if err != nil {
					return err
				}
				child := path.Join(d.path, name)
				switch e.Mode & ModeType {
				case ModeDir:
					stack = append(stack, dir{e.Ino, child})
				case ModeRegular:
					a, err := t.inode(e.Ino)
					if err != nil {
						return err
					}
					return checkFile(a, child)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return FsckReport{}, fmt.Errorf("metadata: fsck %d: %w", ino, err)
	}
	return r, nil
}

// fsckFile classifies the chunks of one file.
func (m *Manager) fsckFile(t tx, a Attr, p string, limit int, r *FsckReport) error {
	_, ls, err := t.layouts(a.Ino, 0, 0)
	if err != nil || len(ls) == 0 {
		return err
	}
	recs := make([]chunkRecord, len(ls))
	for i, l := range ls {
		rec, ok, err := t.chunk(l.Chunk)
		if err != nil {
			return err
		}
		if !ok { // a layout without its record: treat as wanting the default
			rec = chunkRecord{Version: l.Version, Wanted: uint32(m.cfg.Replication)}
		}
		recs[i] = rec
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, l := range ls {
		r.Chunks++
		health, live, _ := m.chunkHealthLocked(l.Chunk, l.Version, int(recs[i].Wanted), now)
		switch health {
		case HealthOK:
			r.Healthy++
			continue
		case HealthUnder:
			r.UnderReplicated++
		case HealthOver:
			r.OverReplicated++
		case HealthMissing:
			r.Missing++
		case HealthCorrupt:
			r.Corrupt++
		}
		if len(r.Problems) < limit {
			r.Problems = append(r.Problems, FsckProblem{Path: p, Chunk: l.Chunk, Version: l.Version,
				State: health, Live: live, Wanted: int(recs[i].Wanted)})
		}
	}
	return nil
}

// pathOf names an inode: a directory by its parent chain, anything else
// (which may have several names) as "<inode N>".
func pathOf(t tx, a Attr) (string, error) {
	if !a.IsDir() {
		return fmt.Sprintf("<inode %d>", a.Ino), nil
	}
	var names []string
	for cur := a; cur.Ino != RootIno; {
		parent, err := t.inode(cur.Parent)
		if err != nil {
			return "", err
		}
		name := ""
		err = t.scan(direntPrefix(parent.Ino), nil, true, func(k, v []byte) error {
			e, err := decodeDirent(v)
			if err != nil || e.Ino != cur.Ino {
				return err
			}
			_, name, err = decodeDirentKey(k)
			if err == nil {
				err = errStop
			}
			return err
		})
		if err != nil {
			return "", err
		}
		names = append(names, name)
		cur = parent
		if len(names) > 1<<16 {
			return "", fmt.Errorf("metadata: path of %d: parent chain too deep", a.Ino)
		}
	}
	slices.Reverse(names)
	return "/" + path.Join(names...), nil
}

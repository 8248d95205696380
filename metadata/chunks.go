package metadata

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/shoalfs/shoal/internal/placement"
	"github.com/sirupsen/logrus"
)

// MaxInline is the most a file's chunk 0 may hold to be kept in the
// manager's records rather than on chunkservers. Inline bytes live in the
// LSM tree (below Badger's value threshold), and a client sends and gets
// them whole with each commit and layout.
const MaxInline = 64 << 10

// regularInode reads ino and checks that it is a regular file.
func regularInode(t tx, ino Ino, op string) (Attr, error) {
	a, err := t.attr(ino)
	switch {
	case err != nil:
		return a, fmt.Errorf("metadata: %s: %w", op, err)
	case a.IsDir():
		return a, fmt.Errorf("metadata: %s: inode %d: %w", op, ino, ErrIsDir)
	case !a.IsRegular():
		return a, fmt.Errorf("metadata: %s: inode %d of mode %o is not a regular file: %w", op, ino, a.Mode, ErrInvalid)
	}
	return a, nil
}

// GetLayout returns ino's attributes and its chunks with index in
// [first, first+count) (count 0: all), each with the live replicas of its
// current version, best first: nodes not draining before draining ones,
// then least full (used/capacity). Dead nodes are left out. A symlink or
// special file has no chunks; a directory fails with ErrIsDir. Chunk 0
// kept inline comes first, with its bytes.
func (m *Manager) GetLayout(ctx context.Context, ino Ino, first, count uint64) (Attr, []ChunkLayout, error) {
	var a Attr
	var idx []uint64
	var ls []layoutEntry
	var inline []byte
	err := m.st.view(func(t tx) error {
		var err error
		if a, err = t.attr(ino); err != nil {
			return fmt.Errorf("metadata: layout: %w", err)
		}
		if a.IsDir() {
			return fmt.Errorf("metadata: layout of directory %d: %w", ino, ErrIsDir)
		}
		if !a.IsRegular() {
			return nil
		}
		if first == 0 {
			if inline, _, err = t.inline(ino); err != nil {
				return err
			}
		}
		idx, ls, err = t.layouts(ino, first, count)
		return err
	})
	if err != nil {
		return Attr{}, nil, err
	}
	out := make([]ChunkLayout, 0, len(ls)+1)
	if inline != nil {
		out = append(out, ChunkLayout{Length: uint64(len(inline)), Inline: inline})
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, l := range ls {
		c := ChunkLayout{Index: idx[i], Chunk: l.Chunk, Version: l.Version, Length: l.Length, Summary: l.Summary}
		for _, n := range m.holdersLocked(l.Chunk, l.Version, now) {
			c.Replicas = append(c.Replicas, Location{NodeID: n.id, Addr: n.rec.Addr})
		}
		out = append(out, c)
	}
	return a, out, nil
}

// AllocateChunk prepares a write of chunk index of file ino.
//
// Without a chunk at index it allocates a new chunk id at version 1 and
// places Replication targets: live, not draining, not in exclude, spread
// over racks, least full first. With a chunk at version v it returns the
// same id at a version above v and above any version already allocated,
// based on v (BaseVersion, BaseLength), with the live holders of v (not
// excluded) as targets: only they can build the new version from v; the
// healer restores the count after the commit.
//
// Fewer than MinReplicas targets fail with ErrNoChunkServers. The
// allocation stays pending for pendingTTL: replicas of it are not garbage,
// and CommitChunks accepts only a pending version.
func (m *Manager) AllocateChunk(ctx context.Context, ino Ino, index uint64, exclude []string) (Allocation, error) {
	var a Attr
	var cur layoutEntry
	var exists bool
	err := m.st.view(func(t tx) error {
		var err error
		if a, err = regularInode(t, ino, "allocate"); err != nil {
			return err
		}
		if index > MaxFileSize/a.ChunkSize {
			return fmt.Errorf("metadata: allocate chunk %d of %d: offset past %d: %w", index, ino, MaxFileSize, ErrInvalid)
		}
		cur, exists, err = t.layout(ino, index)
		return err
	})
	if err != nil {
		return Allocation{}, err
	}
	if !exists {
		return m.allocateNew(a, index, exclude)
	}

	minReplicas := m.cfg.minReplicas()
	alloc := Allocation{Chunk: cur.Chunk, MinReplicas: minReplicas, BaseVersion: cur.Version, BaseLength: cur.Length}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkSafeModeLocked(now); err != nil {
		return Allocation{}, err
	}
	alloc.Version = max(cur.Version, m.cl.maxPending(cur.Chunk)) + 1
	for _, n := range m.holdersLocked(cur.Chunk, cur.Version, now) {
		if !slices.Contains(exclude, n.id) {
			alloc.Targets = append(alloc.Targets, Location{NodeID: n.id, Addr: n.rec.Addr})
		}
	}
	if len(alloc.Targets) < minReplicas {
		return Allocation{}, fmt.Errorf("metadata: allocate chunk %d of %d: %d live replicas of version %d, need %d: %w",
			index, ino, len(alloc.Targets), cur.Version, minReplicas, m.tooFewLocked())
	}
	m.cl.pending[alloc.Chunk] = append(m.cl.pending[alloc.Chunk],
		pendingVersion{version: alloc.Version, base: alloc.BaseVersion, at: now})
	return alloc, nil
}

// allocateNew allocates a new chunk at index of the regular file a, which
// has no chunk there: a fresh id at version 1, placed on Replication
// targets. The allocation is only soft state (a pending entry and the
// targets' placed estimates), so one never used costs nothing lasting:
// the entry expires after pendingTTL, and the next heartbeat of each
// target resets its estimate.
func (m *Manager) allocateNew(a Attr, index uint64, exclude []string) (Allocation, error) {
	id, err := m.st.nextChunk() // may write to Badger: not under m.mu
	if err != nil {
		return Allocation{}, err
	}
	minReplicas := m.cfg.minReplicas()
	alloc := Allocation{Chunk: id, Version: 1, MinReplicas: minReplicas}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkSafeModeLocked(now); err != nil {
		return Allocation{}, err
	}
	for _, n := range placement.Choose(m.candidatesLocked(now), placement.Request{N: m.cfg.Replication, Exclude: exclude}) {
		nd := m.cl.nodes[n.ID]
		alloc.Targets = append(alloc.Targets, Location{NodeID: n.ID, Addr: nd.rec.Addr})
		nd.placed += uint64(a.ChunkSize) // until its next report; see node.placed
	}
	if len(alloc.Targets) < minReplicas {
		return Allocation{}, fmt.Errorf("metadata: allocate chunk %d of %d: %d chunkservers available, need %d: %w",
			index, a.Ino, len(alloc.Targets), minReplicas, m.tooFewLocked())
	}
	m.cl.pending[alloc.Chunk] = append(m.cl.pending[alloc.Chunk], pendingVersion{version: alloc.Version, at: now})
	return alloc, nil
}

// tooFewLocked is the error for too few targets: in safe mode nodes have
// not re-registered yet, which is not the cluster being full, and the
// caller is to retry.
func (m *Manager) tooFewLocked() error {
	if m.cl.safeMode {
		return ErrSafeMode
	}
	return ErrNoChunkServers
}

// CommitChunks records sealed chunk versions in ino's layout, sets its
// size to max(size, minSize) and its mtime (0: now), in one transaction.
//
// Each commit must be a pending allocation (AllocateChunk) whose base is
// still the layout's version at that index (no chunk there for a new
// chunk); otherwise, or after a manager restart lost the allocation, it
// fails with ErrStaleVersion and the writer must allocate again. A commit
// that exactly repeats what the layout holds succeeds without change, so a
// retried commit is harmless. The acknowledging nodes are recorded as
// holders at once; replicas at older versions are queued for deletion.
func (m *Manager) CommitChunks(ctx context.Context, ino Ino, commits []ChunkCommit, minSize uint64, mtime int64) (Attr, error) {
	return m.CommitChunksAndSetAttr(ctx, ino, commits, minSize, mtime, SetAttrArgs{})
}

// CommitChunksAndSetAttr is CommitChunks that also applies set (not its
// size) in the same transaction: the attribute changes a client made on
// the open file along with the data. set's mtime, if in its mask, wins
// over mtime.
func (m *Manager) CommitChunksAndSetAttr(ctx context.Context, ino Ino, commits []ChunkCommit, minSize uint64, mtime int64, set SetAttrArgs) (Attr, error) {
	if set.Mask&SetSize != 0 {
		return Attr{}, fmt.Errorf("metadata: commit to %d: a size change goes through SetAttr: %w", ino, ErrInvalid)
	}
	if minSize > MaxFileSize {
		return Attr{}, fmt.Errorf("metadata: commit to %d: size %d over %d: %w", ino, minSize, MaxFileSize, ErrInvalid)
	}
	seen := make(map[uint64]bool, len(commits))
	for _, c := range commits {
		if len(c.Inline) > 0 {
			if c.Index != 0 || c.Chunk != 0 || c.Version != 0 || c.Length != uint64(len(c.Inline)) || len(c.Inline) > MaxInline || seen[0] {
				return Attr{}, fmt.Errorf("metadata: commit to %d: inline bytes (%d) for index %d, chunk %d version %d, length %d: want index, chunk and version 0, the length theirs, at most %d: %w",
					ino, len(c.Inline), c.Index, c.Chunk, c.Version, c.Length, MaxInline, ErrInvalid)
			}
			seen[0] = true
			continue
		}
		if c.Chunk == 0 || c.Version == 0 || seen[c.Index] {
			return Attr{}, fmt.Errorf("metadata: commit to %d: chunk %d version %d at index %d (zero or repeated): %w",
				ino, c.Chunk, c.Version, c.Index, ErrInvalid)
		}
		seen[c.Index] = true
	}
	bases := make([]uint64, len(commits))
	known := make([]bool, len(commits))
	m.mu.Lock()
	for i, c := range commits {
		for _, p := range m.cl.pending[c.Chunk] {
			if p.version == c.Version {
				bases[i], known[i] = p.base, true
			}
		}
	}
	m.mu.Unlock()

	var a Attr
	applied := make([]bool, len(commits))
	err := m.st.update(ctx, func(t tx) error {
		clear(applied)
		var err error
		if a, err = regularInode(t, ino, "commit"); err != nil {
			return err
		}
		now := m.now().UnixNano()
		for i, c := range commits {
			if c.Length > a.ChunkSize {
				return fmt.Errorf("metadata: commit chunk %d of %d: length %d over chunk size %d: %w", c.Index, ino, c.Length, a.ChunkSize, ErrInvalid)
			}
			l, ok, err := t.layout(ino, c.Index)
			if err != nil {
				return err
			}
			if len(c.Inline) > 0 {
				if ok {
					return fmt.Errorf("metadata: inline commit to %d: chunk %d version %d is at index 0: %w", ino, l.Chunk, l.Version, ErrStaleVersion)
				}
				cur, _, err := t.inline(ino)
				if err != nil {
					return err
				}
				if base := inlineCRC(cur); base != c.InlineBase && !bytes.Equal(cur, c.Inline) {
					// (Equal: a retry of a commit that went through.)
					return fmt.Errorf("metadata: inline commit to %d: built on bytes with CRC %08x, the file has %08x: %w", ino, c.InlineBase, base, ErrStaleVersion)
				}
				if err := t.set(inlineKey(ino), c.Inline); err != nil {
					return err
				}
				continue
			}
			if ok && l == (layoutEntry{Chunk: c.Chunk, Version: c.Version, Length: c.Length, Summary: c.Summary}) {
				continue // a retry of a commit that went through
			}
			switch {
			case !known[i]:
				return fmt.Errorf("metadata: commit chunk %d version %d: not allocated, or the allocation expired: %w", c.Chunk, c.Version, ErrStaleVersion)
			case bases[i] == 0 && ok:
				return fmt.Errorf("metadata: commit chunk %d of %d at index %d: chunk %d version %d was committed there first: %w",
					c.Chunk, ino, c.Index, l.Chunk, l.Version, ErrStaleVersion)
			case bases[i] != 0 && (!ok || l.Chunk != c.Chunk || l.Version != bases[i]):
				return fmt.Errorf("metadata: commit chunk %d version %d of %d: built on version %d, layout has chunk %d version %d: %w",
					c.Chunk, c.Version, ino, bases[i], l.Chunk, l.Version, ErrStaleVersion)
			}
			if c.Index == 0 && !ok {
				// The chunk replaces bytes kept inline, if any (its
				// writer built it from them).
				if err := t.dropInline(ino); err != nil {
					return err
				}
			}
			l = layoutEntry{Chunk: c.Chunk, Version: c.Version, Length: c.Length, Summary: c.Summary}
			if err := t.set(layoutKey(ino, c.Index), encodeLayout(l)); err != nil {
				return err
			}
			rec := chunkRecord{Version: c.Version, Wanted: uint32(m.cfg.Replication), Length: c.Length, Summary: c.Summary, Ino: ino, Index: c.Index}
			if err := t.set(chunkKey(c.Chunk), encodeChunk(rec)); err != nil {
				return err
			}
			applied[i] = true
		}
		a.Size = max(a.Size, minSize)
		a.Mtime, a.Ctime = mtime, now
		if mtime == 0 {
			a.Mtime = now
		}
		set.apply(&a)
		return t.putInode(a)
	})
	if err != nil {
		return Attr{}, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range commits {
		if !applied[i] {
			continue
		}
		m.cl.takePending(c.Chunk, c.Version)
		delete(m.cl.corrupt, c.Chunk)
		for _, r := range slices.Clone(m.cl.replicas[c.Chunk]) {
			if r.version < c.Version {
				m.cl.queueDelete(m.cl.byIdx[r.node], c.Chunk, r.version)
			}
		}
		for _, id := range c.Nodes {
			if n := m.cl.nodes[id]; n != nil {
				m.cl.addReplica(c.Chunk, n, c.Version)
			}
		}
	}
	return a, nil
}

// PendingAllocations counts the chunk versions allocated and not yet
// committed, released or expired.
func (m *Manager) PendingAllocations() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ps := range m.cl.pending {
		n += len(ps)
	}
	return n
}

// inlineCRC is the CRC32C of inline bytes (0 for none, as for no bytes).
func inlineCRC(b []byte) uint32 {
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}

// ReleaseAllocation forgets the pending allocation of new chunk id at
// version, which its client will not use: a chunk 0 handed out with a
// create, for a file that went inline. Allocations building on a version
// are left to expire (their replicas may exist).
func (m *Manager) ReleaseAllocation(id ChunkID, version uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.cl.pending[id] {
		if p.version == version && p.base == 0 {
			m.cl.takePending(id, version)
			return
		}
	}
}

// ReportBadReplica records that a reader found a replica bad (checksum
// mismatch, missing): the replica is forgotten and queued for deletion,
// and the healer re-replicates the chunk. The last live replica of a
// chunk's current version is kept, though (only logged): a reader that
// timed out is not proof enough to destroy the only copy.
func (m *Manager) ReportBadReplica(ctx context.Context, id ChunkID, version uint64, nodeID, reason string) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.log.WithFields(logrus.Fields{"chunk": id, "version": version, "node": nodeID, "reason": reason})
	n := m.cl.nodes[nodeID]
	if n == nil {
		log.Warn("metadata: bad replica reported on an unknown node")
		return nil
	}
	others := 0
	for _, h := range m.holdersLocked(id, version, now) {
		if h != n {
			others++
		}
	}
	if others == 0 {
		log.Warn("metadata: bad replica reported, but it is the last live one: kept")
		return nil
	}
	log.Warn("metadata: bad replica reported")
	m.cl.queueDelete(n, id, version)
	m.cl.corrupt[id] = version
	return nil
}

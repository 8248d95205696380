package metadata

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"
)

// Register records a chunkserver and its full replica report, and returns
// its id: a new one when args.NodeID is empty, else args.NodeID (also when
// the manager does not know it: it lost its registry, and the node keeps
// its identity). The identity (address, rack, capacity) is persisted; the
// report replaces whatever the manager believed the node held, and is
// reconciled: replicas of chunks the namespace does not have, at versions
// older than the current one, or newer but not being written, are queued
// for deletion (not in safe mode; see SafeMode).
func (m *Manager) Register(ctx context.Context, args RegisterArgs) (string, error) {
	if args.Addr == "" {
		return "", fmt.Errorf("metadata: register: empty address: %w", ErrInvalid)
	}
	id := args.NodeID
	if id == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("metadata: register: node id: %w", err)
		}
		id = "cs-" + hex.EncodeToString(b[:])
	}
	var rec nodeRecord
	err := m.st.update(ctx, func(t tx) error {
		rec = nodeRecord{Addr: args.Addr, Rack: args.Rack, Capacity: args.Capacity}
		err := t.get(nodeKey(id), "node", func(v []byte) error {
			old, err := decodeNode(v)
			rec.Draining = old.Draining
			return err
		})
		if err != nil && !isNotFound(err) {
			return err
		}
		return t.set(nodeKey(id), encodeNode(rec))
	})
	if err != nil {
		return "", fmt.Errorf("metadata: register %s: %w", id, err)
	}

	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.cl.addNode(id, rec)
	n.rec = rec
	n.used, n.placed = args.Used, 0
	n.lastSeen = now
	n.registered = true
	n.dead = false
	m.cl.removeNodeReplicas(n)
	clear(n.deletes) // the reconciliation below queues again what is still due
	if err := m.reconcileReportLocked(n, args.Chunks); err != nil {
		return "", fmt.Errorf("metadata: register %s: %w", id, err)
	}
	m.log.WithFields(logrus.Fields{"node": id, "addr": args.Addr, "rack": args.Rack, "chunks": len(args.Chunks)}).
		Info("metadata: chunkserver registered")
	if err := m.checkSafeModeLocked(now); err != nil {
		return "", fmt.Errorf("metadata: register %s: %w", id, err)
	}
	return id, nil
}

// Heartbeat applies a chunkserver's incremental report and returns the
// replicas it must delete. A node the manager does not know, has not had a
// full report from since Open, or considers dead is asked to register
// again. Corrupt replicas are forgotten and queued for deletion.
func (m *Manager) Heartbeat(ctx context.Context, args HeartbeatArgs) (HeartbeatReply, error) {
	if args.NodeID == "" {
		return HeartbeatReply{}, fmt.Errorf("metadata: heartbeat: empty node id: %w", ErrInvalid)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.cl.nodes[args.NodeID]
	if n == nil || !m.aliveLocked(n, now) {
		if n != nil {
			n.registered = false
		}
		return HeartbeatReply{Reregister: true}, nil
	}
	n.lastSeen = now
	n.used, n.placed = args.Used, 0
	n.rec.Capacity = args.Capacity
	for _, r := range args.Removed {
		m.cl.removeReplica(r.Chunk, n, r.Version)
	}
	for _, r := range args.Corrupt {
		m.cl.queueDelete(n, r.Chunk, r.Version)
		m.cl.corrupt[r.Chunk] = r.Version
		m.log.WithFields(logrus.Fields{"node": n.id, "chunk": r.Chunk, "version": r.Version}).Warn("metadata: corrupt replica reported")
	}
	if len(args.Added) > 0 {
		if err := m.reconcileReportLocked(n, args.Added); err != nil {
			return HeartbeatReply{}, fmt.Errorf("metadata: heartbeat %s: %w", n.id, err)
		}
	}
	reply := HeartbeatReply{Delete: make([]ReplicaReport, 0, len(n.deletes))}
	for cv := range n.deletes {
		reply.Delete = append(reply.Delete, ReplicaReport{Chunk: cv.chunk, Version: cv.version})
	}
	slices.SortFunc(reply.Delete, func(a, b ReplicaReport) int {
		return cmp.Or(cmp.Compare(a.Chunk, b.Chunk), cmp.Compare(a.Version, b.Version))
	})
	clear(n.deletes)
	return reply, nil
}

// Decommission marks a chunkserver, named by id or address, as draining:
// it gets no new replicas, readers use it last, and it shows as drained in
// Status once no chunk needs it. The flag is persisted.
func (m *Manager) Decommission(ctx context.Context, nodeOrAddr string) error {
	now := m.now()
	m.mu.Lock()
	// An id wins; among nodes at the address (an old identity may linger
	// there, dead) a live one wins.
	n := m.cl.nodes[nodeOrAddr]
	if n == nil {
		for _, c := range m.cl.byIdx {
			if c.rec.Addr == nodeOrAddr && (n == nil || !m.aliveLocked(n, now) && m.aliveLocked(c, now)) {
				n = c
			}
		}
	}
	m.mu.Unlock()
	if n == nil {
		return notFound("metadata: decommission %q", nodeOrAddr)
	}
	var rec nodeRecord
	err := m.st.update(ctx, func(t tx) error {
		err := t.get(nodeKey(n.id), "node", func(v []byte) (err error) {
			rec, err = decodeNode(v)
			return err
		})
		if err != nil {
			return err
		}
		rec.Draining = true
		return t.set(nodeKey(n.id), encodeNode(rec))
	})
	if err != nil {
		return fmt.Errorf("metadata: decommission %s: %w", n.id, err)
	}
	m.mu.Lock()
	n.rec.Draining = true
	m.mu.Unlock()
	m.log.WithFields(logrus.Fields{"node": n.id, "addr": rec.Addr}).Info("metadata: chunkserver draining")
	return nil
}

// replicaClass is the verdict on one reported replica.
type replicaClass int

const (
	replicaKeep        replicaClass = iota // current version, or being written
	replicaOrphan                          // the namespace has no such chunk
	replicaStale                           // older than the current version
	replicaUncommitted                     // newer than current and not being written: a write that died
)

func (c replicaClass) String() string {
	return [...]string{"keep", "orphan", "stale", "uncommitted"}[c]
}

func (m *Manager) classifyLocked(t tx, id ChunkID, version uint64) (replicaClass, error) {
	if m.cl.isPending(id, version) {
		return replicaKeep, nil
	}
	rec, ok, err := t.chunk(id)
	switch {
	case err != nil:
		return replicaKeep, err
	case !ok:
		return replicaOrphan, nil
	case version < rec.Version:
		return replicaStale, nil
	case version > rec.Version:
		return replicaUncommitted, nil
	}
	return replicaKeep, nil
}

// reconcileReportLocked adds reported replicas of n to the map, except
// those that must go, which it queues for deletion instead. In safe mode
// every replica is added and nothing is deleted; the end of safe mode
// reconciles them.
func (m *Manager) reconcileReportLocked(n *node, reports []ReplicaReport) error {
	return m.st.view(func(t tx) error {
		for _, r := range reports {
			if m.cl.safeMode {
				m.cl.addReplica(r.Chunk, n, r.Version)
				continue
			}
			class, err := m.classifyLocked(t, r.Chunk, r.Version)
			if err != nil {
				return err
			}
			if class == replicaKeep {
				m.cl.addReplica(r.Chunk, n, r.Version)
				continue
			}
			m.log.WithFields(logrus.Fields{"node": n.id, "chunk": r.Chunk, "version": r.Version, "class": class}).
				Debug("metadata: deleting reported replica")
			m.cl.queueDelete(n, r.Chunk, r.Version)
		}
		return nil
	})
}

// reconcileChunksLocked re-judges every known replica of the given chunks
// and queues the deletion of those that must go. It does nothing in safe
// mode.
func (m *Manager) reconcileChunksLocked(ids []ChunkID) error {
	if m.cl.safeMode || len(ids) == 0 {
		return nil
	}
	return m.st.view(func(t tx) error {
		for _, id := range ids {
			for _, r := range slices.Clone(m.cl.replicas[id]) {
				class, err := m.classifyLocked(t, id, r.version)
				if err != nil {
					return err
				}
				if class != replicaKeep {
					m.cl.queueDelete(m.cl.byIdx[r.node], id, r.version)
				}
			}
		}
		return nil
	})
}

package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Manager is shoal's metadata server. Its methods are safe for concurrent
// use; see the package documentation for the concurrency model.
type Manager struct {
	cfg    Config
	log    *logrus.Entry
	st     *store
	opened time.Time

	// Counters kept beside Badger so StatFS and Status need no scan;
	// loaded at Open and adjusted after each committed transaction.
	inodes atomic.Int64 // every inode, including ones kept open
	files  atomic.Int64 // regular files

	healer atomic.Pointer[func() HealerStatus]

	mu sync.Mutex // guards cl; see cluster for the lock order
	cl cluster

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the store in cfg.Dir, creating the root
// directory on first use, and loads the node registry. The Manager starts
// in safe mode if chunkservers were registered before.
func Open(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.logger()
	st, err := openStore(cfg, log)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: log, st: st, opened: cfg.Now(), cl: newCluster()}
	if err := m.load(); err != nil {
		st.close()
		return nil, err
	}
	log.WithFields(logrus.Fields{
		"inodes": m.inodes.Load(), "nodes": len(m.cl.nodes), "safe_mode": m.cl.safeMode,
	}).Info("metadata: opened")
	return m, nil
}

// load creates the root if missing, counts inodes and loads the registry.
func (m *Manager) load() error {
	now := m.cfg.Now().UnixNano()
	err := m.st.update(context.Background(), func(t tx) error {
		ok, err := t.has(inodeKey(RootIno))
		if err != nil || ok {
			return err
		}
		return t.putInode(Attr{
			Ino: RootIno, Mode: ModeDir | 0o755, Nlink: 2,
			Atime: now, Mtime: now, Ctime: now, Parent: RootIno,
		})
	})
	if err != nil {
		return fmt.Errorf("metadata: create root: %w", err)
	}
	return m.st.view(func(t tx) error {
		var inodes, files int64
		err := t.scan(allPrefix(prefixInode), nil, true, func(k, v []byte) error {
			ino, err := decodeInoKey(prefixInode, k)
			if err != nil {
				return err
			}
			a, err := decodeInode(ino, v)
			if err != nil {
				return fmt.Errorf("inode %d: %w", ino, err)
			}
			inodes++
			if a.IsRegular() {
				files++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("metadata: count inodes: %w", err)
		}
		m.inodes.Store(inodes)
		m.files.Store(files)
		return t.scan(allPrefix(prefixNode), nil, true, func(k, v []byte) error {
			id, err := decodeNodeKey(k)
			if err != nil {
				return err
			}
			rec, err := decodeNode(v)
			if err != nil {
				return fmt.Errorf("metadata: node %q: %w", id, err)
			}
			n := m.cl.addNode(id, rec)
			n.dead = true
			m.cl.expect[id] = true
			m.cl.safeMode = true
			return nil
		})
	})
}

// Close releases the store. It may be called more than once; calls made
// after it fail with ErrClosed. Stop Run and the gRPC server first.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.st.close()
	})
	return m.closeErr
}

// Sync makes every change acknowledged so far durable on the manager's
// disk. Without Config.SyncWrites, changes are acknowledged once they are
// in Badger's log; a client's fsync calls this.
func (m *Manager) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.st.sync()
}

// Run keeps the soft state current until ctx ends: it logs nodes that go
// dead (liveness itself is also evaluated on every read, with Config.Now),
// ends safe mode when its time is up, and expires allocations that were
// never committed. It returns nil when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	tick := min(max(m.cfg.DeadAfter/4, 50*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	purge := time.NewTicker(time.Minute)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.tick(); err != nil && !errors.Is(err, ErrClosed) {
				m.log.WithError(err).Warn("metadata: background pass")
			}
		case <-purge.C:
			if err := m.PurgeOrphans(ctx); err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				m.log.WithError(err).Warn("metadata: purging unreleased inodes")
			}
		}
	}
}

// PurgeOrphans removes the inodes kept for an open file (Unlink or Rename
// with keepOpen) whose last link went more than Config.OrphanTTL ago: the
// mount that held them open died without releasing them. Run calls it
// every minute.
func (m *Manager) PurgeOrphans(ctx context.Context) error {
	cutoff := m.now().Add(-m.cfg.orphanTTL()).UnixNano()
	var stale []Ino
	err := m.st.view(func(t tx) error {
		return t.scan(allPrefix(prefixOrphan), nil, false, func(k, _ []byte) error {
			ino, err := decodeInoKey(prefixOrphan, k)
			if err != nil {
				return err
			}
			a, err := t.inode(ino)
			if err == nil && a.Nlink == 0 && a.Ctime < cutoff {
				stale = append(stale, ino)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("metadata: scan unreleased inodes: %w", err)
	}
	for _, ino := range stale {
		if err := m.ReleaseInode(ctx, ino); err != nil {
			return err
		}
		m.log.WithField("ino", ino).Info("metadata: removed a file unlinked while open and never released")
	}
	return nil
}

// tick is one background pass.
func (m *Manager) tick() error {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.cl.byIdx {
		alive := m.aliveLocked(n, now)
		if alive == !n.dead {
			continue
		}
		n.dead = !alive
		if n.dead {
			n.registered = false // it must send a full report when it comes back
			m.log.WithFields(logrus.Fields{"node": n.id, "addr": n.rec.Addr, "last_heartbeat": n.lastSeen}).Warn("metadata: chunkserver dead")
		}
	}
	if err := m.checkSafeModeLocked(now); err != nil {
		return err
	}
	return m.expirePendingLocked(now)
}

// SafeMode reports whether the manager is in safe mode: it serves reads
// and writes but issues no orphan or stale deletes, and the healer must not
// act, because its picture of the replicas is not complete yet. Safe mode
// starts at Open if any chunkserver was registered before, and ends when
// every one of them has registered again, or DeadAfter after Open,
// whichever comes first.
func (m *Manager) SafeMode() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkSafeModeLocked(m.cfg.Now()); err != nil {
		m.log.WithError(err).Warn("metadata: leave safe mode")
	}
	return m.cl.safeMode
}

// checkSafeModeLocked ends safe mode when its condition holds, then
// reconciles every replica the nodes reported meanwhile.
func (m *Manager) checkSafeModeLocked(now time.Time) error {
	if !m.cl.safeMode {
		return nil
	}
	reported := 0
	for id := range m.cl.expect {
		if m.cl.nodes[id].registered {
			reported++
		}
	}
	timedOut := now.Sub(m.opened) >= m.cfg.DeadAfter
	if reported < len(m.cl.expect) && !timedOut {
		return nil
	}
	m.cl.safeMode = false
	m.log.WithFields(logrus.Fields{"reported": reported, "registered": len(m.cl.expect), "timed_out": timedOut}).
		Info("metadata: leaving safe mode")
	ids := make([]ChunkID, 0, len(m.cl.replicas))
	for id := range m.cl.replicas {
		ids = append(ids, id)
	}
	return m.reconcileChunksLocked(ids)
}

// expirePendingLocked drops allocations older than pendingTTL and
// reconciles their chunks, so replicas of writes that never committed are
// deleted.
func (m *Manager) expirePendingLocked(now time.Time) error {
	var ids []ChunkID
	for id, ps := range m.cl.pending {
		kept := ps[:0]
		for _, p := range ps {
			if now.Sub(p.at) < pendingTTL {
				kept = append(kept, p)
			}
		}
		if len(kept) == len(ps) {
			continue
		}
		ids = append(ids, id)
		if len(kept) == 0 {
			delete(m.cl.pending, id)
		} else {
			m.cl.pending[id] = kept
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return m.reconcileChunksLocked(ids)
}

// SetHealerStatus installs the function Status calls to report the
// healer's progress. Nil removes it.
func (m *Manager) SetHealerStatus(fn func() HealerStatus) {
	if fn == nil {
		m.healer.Store(nil)
		return
	}
	m.healer.Store(&fn)
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

// heartbeatInterval is the interval the manager asks chunkservers to
// heartbeat at: a tenth of DeadAfter, at most one second, so several
// heartbeats may be lost before a node counts as dead.
func (m *Manager) heartbeatInterval() time.Duration {
	return min(m.cfg.DeadAfter/10, time.Second)
}

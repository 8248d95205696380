// Package metadata is shoal's manager: the namespace (inodes, directory
// entries), file layouts and the chunk map, persisted in Badger; the
// chunkserver registry; replica placement (internal/placement); the soft
// state of where replicas are; and the gRPC service (shoalpb.ManagerServer)
// over all of it.
//
// # Persistence
//
// Everything that must survive a crash is in Badger. A change is
// acknowledged once its transaction is in Badger's log, a memory-mapped
// file: it survives kill -9 of the manager. The log is fsynced at most
// Config.SyncInterval later by a background loop in store.go, and at once
// by Manager.Sync, which a client's fsync calls (Config.SyncWrites fsyncs
// every transaction instead; see docs/DURABILITY.md). The key
// space is in keys.go, the value encoding in codec.go; only the unexported
// store type (store.go) touches Badger. Every namespace mutation (create,
// link, unlink, rename, setattr, commit) is one read-write transaction;
// badger.ErrConflict is retried in store.update and nowhere else.
//
// Invariants kept by those transactions:
//   - the root is inode 1; inode numbers and chunk ids come from Badger
//     sequences and are never reused;
//   - every directory entry names an existing inode; a directory has
//     exactly one entry naming it, nlink 2 + its subdirectories, and a
//     parent pointer (Attr.Parent) kept in step with renames;
//   - an inode with nlink 0 exists only while kept open (o|ino), until
//     ReleaseInode;
//   - a layout entry (l|ino|index) and its chunk record (c|id) are written
//     and deleted together; a chunk belongs to one (inode, index).
//
// Directory mtime/ctime are written as a separate stamp key (m|ino) with a
// blind write, so concurrent creates in one directory, which only read the
// directory's record, never conflict with each other (and, with
// SyncWrites, share one fsync through Badger's group commit).
//
// # Soft state
//
// Which chunkserver holds which replica, node liveness, allocations in
// flight and the deletes waiting for a heartbeat live in memory (type
// cluster, guarded by Manager.mu) and are rebuilt from the chunkservers'
// reports after a restart. Node identities (id, address, rack, capacity,
// draining) are persisted; liveness is not: a node is live while it
// heartbeats within Config.DeadAfter, evaluated whenever it matters with
// Config.Now. Lock order: Manager.mu may be held around a read-only Badger
// transaction, never taken inside one, and no read-write transaction runs
// under it; the in-memory state is updated after the transaction that
// justifies it has committed.
//
// Replicas are reconciled against the chunk records whenever a node
// reports them: a replica of a chunk the namespace lacks (orphan), of an
// older version (stale), or of a newer version that no write in flight
// owns (a write that died) is queued for deletion; the next heartbeat
// reply of that node carries it. Allocations in flight are kept in memory
// with their time; their replicas are never judged, and a commit must
// match one.
//
// # Safe mode
//
// After Open the manager is in safe mode if chunkservers were registered
// before. It serves everything, but issues no orphan or stale deletes and
// tells the healer (Snapshot.SafeMode) not to act, so a restart does not
// cause a deletion or replication storm. It ends when every registered
// node has reported again, or DeadAfter after Open; then every replica
// reported meanwhile is reconciled.
//
// # Concurrency
//
// All exported methods are safe for concurrent use. Namespace calls
// proceed in parallel, limited only by Badger's conflict detection on the
// keys they touch; calls on the soft state serialize on Manager.mu, which
// is held briefly except by Snapshot, Status and the end of safe mode,
// which scan every chunk.
//
// # Memory
//
// Badger is sized small (8 MiB memtables and caches, 2 MiB base tables).
// Measured with 1,000,000 files (metadata only, 64 concurrent creators):
// the live Go heap peaks near 115 MB, mostly Badger's compaction buffers;
// with the default GOGC the heap grows to twice that, so the manager
// process should run with a memory limit (GOMEMLIMIT=160MiB gave a peak
// RSS of 254 MiB, of which ~150 MiB were reclaimable mmapped tables). The
// replica map costs about 85 bytes per chunk replica set on top.
//
// The healer is wired in from outside: it reads Snapshot, acts through
// the chunkservers, and asks for deletions with QueueDelete;
// SetHealerStatus makes Status report its progress.
package metadata

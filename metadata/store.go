package metadata

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/sirupsen/logrus"
)

// store is the manager's typed access to Badger. Every Badger call goes
// through view or update, which hold mu for reading so that close waits for
// calls in flight and later calls get ErrClosed instead of touching a
// closed DB.
type store struct {
	db  *badger.DB
	log *logrus.Entry

	inoSeq   *badger.Sequence // inode numbers: Next()+2 (1 is the root)
	chunkSeq *badger.Sequence // chunk ids: Next()+1

	mu     sync.RWMutex // guards closed; read-held around every Badger call
	closed bool

	// Without SyncWrites, dirty says a transaction committed since the
	// last fsync of the log; syncLoop (stopped by close) fsyncs it.
	syncWrites bool
	dirty      atomic.Bool
	stopSync   chan struct{}
	syncDone   chan struct{}
}

// maxConflictRetries bounds update's retries of a conflicting transaction.
const maxConflictRetries = 100

// badgerOptions keeps Badger's memory modest: the manager must stay under
// ~256 MiB RSS with a million files. Values are small and stay in the LSM
// tree; the value log only serves as Badger requires it.
func badgerOptions(cfg Config, log *logrus.Entry) badger.Options {
	opts := badger.DefaultOptions(cfg.Dir)
	if cfg.InMemory {
		opts = badger.DefaultOptions("").WithInMemory(true)
	}
	return opts.
		WithLogger(badgerLogger{log.WithField("component", "badger")}).
		WithSyncWrites(cfg.SyncWrites).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueThreshold(64 << 10).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithCompression(options.None).
		WithMetricsEnabled(false)
}

// badgerLogger sends Badger's log lines to our logger, with its debug
// lines (several per write) demoted to trace so that a debug-level
// manager log stays readable.
type badgerLogger struct{ *logrus.Entry }

func (l badgerLogger) Debugf(format string, args ...any) { l.Tracef(format, args...) }

func openStore(cfg Config, log *logrus.Entry) (*store, error) {
	db, err := badger.Open(badgerOptions(cfg, log))
	if err != nil {
		return nil, fmt.Errorf("metadata: open badger at %q: %w", cfg.Dir, err)
	}
	s := &store{db: db, log: log, syncWrites: cfg.SyncWrites, stopSync: make(chan struct{}), syncDone: make(chan struct{})}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if s.syncWrites || cfg.InMemory {
		close(s.syncDone)
	} else {
		go s.syncLoop(cfg.syncInterval())
	}
	return s, nil
}

// syncLoop fsyncs the log every interval if anything was committed since
// the last fsync, until close.
func (s *store) syncLoop(every time.Duration) {
	defer close(s.syncDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopSync:
			return
		case <-t.C:
			if !s.dirty.Load() {
				continue
			}
			if err := s.sync(); err != nil && !errors.Is(err, ErrClosed) {
				s.log.WithError(err).Error("metadata: background fsync of the log failed")
			}
		}
	}
}

// sync makes every committed transaction durable on disk.
func (s *store) sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	// Cleared first: a commit racing with the fsync sets it again.
	s.dirty.Store(false)
	if err := s.db.Sync(); err != nil {
		s.dirty.Store(true)
		return fmt.Errorf("metadata: fsync the log: %w", err)
	}
	return nil
}

// init checks the schema version and leases the sequences.
func (s *store) init() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(keySchema, []byte{schemaVersion})
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != schemaVersion {
				return fmt.Errorf("metadata: schema version %v in store, this manager reads %d", v, schemaVersion)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("metadata: check schema: %w", err)
	}
	// Leases of 1000: at most that many numbers are skipped per restart.
	if s.inoSeq, err = s.db.GetSequence(keyInoSeq, 1000); err != nil {
		return fmt.Errorf("metadata: inode sequence: %w", err)
	}
	if s.chunkSeq, err = s.db.GetSequence(keyChunkSeq, 1000); err != nil {
		return fmt.Errorf("metadata: chunk sequence: %w", err)
	}
	return nil
}

func (s *store) close() error {
	select {
	case <-s.stopSync:
	default:
		close(s.stopSync)
	}
	<-s.syncDone
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, seq := range []*badger.Sequence{s.inoSeq, s.chunkSeq} {
		if err := seq.Release(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metadata: close badger: %w", err)
	}
	return nil
}

// view runs fn in a read-only transaction.
func (s *store) view(fn func(t tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(func(txn *badger.Txn) error { return fn(tx{txn}) })
}

// update runs fn in a read-write transaction and commits it. It is the one
// place that retries badger.ErrConflict: fn must therefore be repeatable,
// resetting anything it reports to its caller at its start.
func (s *store) update(ctx context.Context, fn func(t tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	for attempt := 0; ; attempt++ {
		err := s.db.Update(func(txn *badger.Txn) error { return fn(tx{txn}) })
		if err == nil && !s.syncWrites {
			s.dirty.Store(true)
		}
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt >= maxConflictRetries {
			return fmt.Errorf("metadata: transaction still conflicting after %d attempts: %w", attempt+1, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// A short random pause de-synchronizes writers that keep colliding.
		if attempt > 2 {
			time.Sleep(time.Duration(rand.IntN(100*attempt)) * time.Microsecond)
		}
	}
}

// nextIno returns a fresh inode number.
func (s *store) nextIno() (Ino, error) {
	n, err := s.inoSeq.Next()
	if err != nil {
		return 0, fmt.Errorf("metadata: next inode number: %w", err)
	}
	return Ino(n + 2), nil
}

// nextChunk returns a fresh chunk id.
func (s *store) nextChunk() (ChunkID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	n, err := s.chunkSeq.Next()
	if err != nil {
		return 0, fmt.Errorf("metadata: next chunk id: %w", err)
	}
	return ChunkID(n + 1), nil
}

// tx is a Badger transaction with typed accessors. Get-style methods wrap
// ErrNotFound when the key is missing.
type tx struct{ txn *badger.Txn }

func (t tx) get(k []byte, what string, decode func([]byte) error) error {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return notFound("metadata: %s", what)
	}
	if err != nil {
		return fmt.Errorf("metadata: get %s: %w", what, err)
	}
	return item.Value(decode)
}

func (t tx) has(k []byte) (bool, error) {
	_, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t tx) set(k, v []byte) error { return t.txn.Set(k, v) }

func (t tx) del(k []byte) error { return t.txn.Delete(k) }

// inode reads an inode record as stored (a directory's times may be stale:
// use attr).
func (t tx) inode(ino Ino) (Attr, error) {
	var a Attr
	err := t.get(inodeKey(ino), fmt.Sprintf("inode %d", ino), func(v []byte) (err error) {
		a, err = decodeInode(ino, v)
		return err
	})
	return a, err
}

// attr reads an inode with a directory's mtime/ctime taken from its stamp.
func (t tx) attr(ino Ino) (Attr, error) {
	a, err := t.inode(ino)
	if err != nil || !a.IsDir() {
		return a, err
	}
	st, ok, err := t.stamp(ino)
	if err != nil {
		return a, err
	}
	if ok {
		a.Mtime, a.Ctime = st.Mtime, st.Ctime
	}
	return a, nil
}

func (t tx) putInode(a Attr) error { return t.set(inodeKey(a.Ino), encodeInode(a)) }

// stamp reads a directory's time stamp, if it has one.
func (t tx) stamp(ino Ino) (dirStamp, bool, error) {
	var st dirStamp
	err := t.get(dirTimeKey(ino), "dir stamp", func(v []byte) (err error) {
		st, err = decodeStamp(v)
		return err
	})
	if isNotFound(err) {
		return st, false, nil
	}
	return st, err == nil, err
}

// touchDir records a change in directory dir at now, without reading it.
func (t tx) touchDir(dir Ino, now int64) error {
	return t.set(dirTimeKey(dir), encodeStamp(dirStamp{Mtime: now, Ctime: now}))
}

// dirent reads entry name of parent.
func (t tx) dirent(parent Ino, name string) (dirent, bool, error) {
	var e dirent
	err := t.get(direntKey(parent, name), "dirent", func(v []byte) (err error) {
		e, err = decodeDirent(v)
		return err
	})
	if isNotFound(err) {
		return e, false, nil
	}
	return e, err == nil, err
}

func (t tx) putDirent(parent Ino, name string, e dirent) error {
	return t.set(direntKey(parent, name), encodeDirent(e))
}

// layout reads the layout entry of ino at index, if any.
func (t tx) layout(ino Ino, index uint64) (layoutEntry, bool, error) {
	var l layoutEntry
	err := t.get(layoutKey(ino, index), "layout", func(v []byte) (err error) {
		l, err = decodeLayout(v)
		return err
	})
	if isNotFound(err) {
		return l, false, nil
	}
	return l, err == nil, err
}

// chunk reads a chunk record, if any.
func (t tx) chunk(id ChunkID) (chunkRecord, bool, error) {
	var c chunkRecord
	err := t.get(chunkKey(id), "chunk", func(v []byte) (err error) {
		c, err = decodeChunk(v)
		return err
	})
	if isNotFound(err) {
		return c, false, nil
	}
	return c, err == nil, err
}

// scan calls fn for every key with prefix, starting at from (nil: the
// prefix itself), in key order, until fn returns errStop or an error.
// Values are read only when values is set. The slices passed to fn are
// valid only during the call.
func (t tx) scan(prefix, from []byte, values bool, fn func(k, v []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = values
	if values {
		opts.PrefetchSize = 64
	}
	it := t.txn.NewIterator(opts)
	defer it.Close()
	if from == nil {
		from = prefix
	}
	for it.Seek(from); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var err error
		if values {
			err = item.Value(func(v []byte) error { return fn(item.Key(), v) })
		} else {
			err = fn(item.Key(), nil)
		}
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errStop ends a scan early without an error.
var errStop = errors.New("stop scan")

// layouts returns ino's layout entries with index >= first, in index order.
func (t tx) layouts(ino Ino, first uint64, count uint64) ([]uint64, []layoutEntry, error) {
	var idx []uint64
	var out []layoutEntry
	err := t.scan(layoutPrefix(ino), layoutKey(ino, first), true, func(k, v []byte) error {
		_, index, err := decodeLayoutKey(k)
		if err != nil {
			return err
		}
		if count > 0 && index-first >= count {
			return errStop
		}
		l, err := decodeLayout(v)
		if err != nil {
			return fmt.Errorf("layout %d/%d: %w", ino, index, err)
		}
		idx = append(idx, index)
		out = append(out, l)
		return nil
	})
	return idx, out, err
}

// inline reads the bytes of chunk 0 of ino kept inline, if any.
func (t tx) inline(ino Ino) ([]byte, bool, error) {
	var b []byte
	err := t.get(inlineKey(ino), "inline data", func(v []byte) error {
		b = slices.Clone(v)
		return nil
	})
	if isNotFound(err) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// dropInline deletes ino's inline bytes, if any. (A delete of a missing
// key would still write a tombstone.)
func (t tx) dropInline(ino Ino) error {
	ok, err := t.has(inlineKey(ino))
	if err != nil || !ok {
		return err
	}
	return t.del(inlineKey(ino))
}

// dropData deletes ino's layout entries at index >= first and their chunk
// records (and from index 0, its inline bytes), returning the chunk ids
// that became garbage.
func (t tx) dropData(ino Ino, first uint64) ([]ChunkID, error) {
	idx, ls, err := t.layouts(ino, first, 0)
	if err != nil {
		return nil, err
	}
	if first == 0 {
		if err := t.dropInline(ino); err != nil {
			return nil, err
		}
	}
	ids := make([]ChunkID, 0, len(ls))
	for i, l := range ls {
		if err := t.del(layoutKey(ino, idx[i])); err != nil {
			return nil, err
		}
		if err := t.del(chunkKey(l.Chunk)); err != nil {
			return nil, err
		}
		ids = append(ids, l.Chunk)
	}
	return ids, nil
}

// removeInode deletes an inode with everything hanging off it (layout,
// chunk records, orphan mark, directory stamp) and returns the garbage
// chunks.
func (t tx) removeInode(a Attr) ([]ChunkID, error) {
	var ids []ChunkID
	if a.IsRegular() {
		var err error
		if ids, err = t.dropData(a.Ino, 0); err != nil {
			return nil, err
		}
	}
	for _, k := range [][]byte{inodeKey(a.Ino), orphanKey(a.Ino), dirTimeKey(a.Ino)} {
		if err := t.del(k); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

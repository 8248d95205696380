// Package diskstore keeps chunk replicas as files on a local disk: one file
// per replica holding the data, a CRC32C per 64 KiB block and a trailer
// (format.go), in a fanned-out directory tree (layout.go).
//
// Durability: a replica is written to a temporary file (a spare file made
// ahead of time, spare.go, or one made in its final directory), closed
// and renamed to its final name: it survives the process dying. Sync
// fsyncs the file and the directory: it survives the machine crashing. A
// replica sealed but not synced when the machine crashed may come back
// torn or empty; its header and checksums tell, and it is reported
// corrupt (and re-copied by the healer), never served. Temporary and
// spare files left by a crash are removed at Open. Deletes are not
// fsynced: a delete lost in a crash brings back a replica the manager no
// longer wants, which it deletes again.
//
// Integrity: every read verifies the checksum of each block it touches,
// and the header and checksum table carry checksums of their own.
package diskstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/internal/hugebuf"
	"github.com/shoalfs/shoal/internal/localread"
)

// Options tune a Store.
type Options struct {
	// Capacity is the most bytes of replica files the store holds;
	// writes past it fail with chunk.ErrNoSpace. 0 means the size of the
	// filesystem, with the filesystem's own ENOSPC as the only limit.
	Capacity int64
	// Log receives the store's few log lines; nil discards them.
	Log *logrus.Entry
}

// Store is a chunkserver.Store on a local directory.
type Store struct {
	root     string
	capacity int64 // Options.Capacity; 0: unlimited
	log      *logrus.Entry
	lock     *os.File

	// used is the bytes of sealed replica files plus the reservations of
	// writers in progress.
	used atomic.Int64

	// bufs holds 1 MiB buffers for copies, unaligned reads, and the
	// write-behind buffers O_DIRECT writes go out from: in huge pages,
	// up to bufHugeLimit, so that each is one disk request (package
	// hugebuf).
	bufs *hugebuf.Buffers

	// dirs remembers fan-out directories known to exist.
	dirs sync.Map // string → struct{}

	// spare holds empty files made ahead for new replicas (spare.go).
	spare *spares

	mu sync.Mutex // guards the fields below
	// building holds the replicas being built, so two writers never race
	// for one name.
	building map[replicaKey]struct{}
	closed   bool

	// hmu guards the open-replica cache: handles, and every handle's
	// refs. Lock order: mu before hmu (Close); never held across I/O
	// other than closing a file.
	hmu     sync.Mutex
	handles map[replicaKey]*handle
	// hgen counts deletes and evictions; a handle opened while it
	// changed is not cached, so a deleted replica is never served from
	// the cache.
	hgen uint64
}

// handle is an open sealed replica with its parsed header, shared by
// reads through the cache. Sealed replicas never change, so the header
// stays valid; data and checksums are still read (and verified) from the
// file on every read.
type handle struct {
	f    *os.File
	h    header
	refs int // the cache's reference and every reader's; guarded by Store.hmu

	// direct reads the replica with O_DIRECT (large reads: see readAt);
	// opened on first use, nil if the filesystem does not support it.
	directOnce sync.Once
	direct     *os.File
}

// directFile returns hd's O_DIRECT descriptor, opening it on first use;
// nil if the filesystem does not support O_DIRECT.
func (hd *handle) directFile() *os.File {
	hd.directOnce.Do(func() { hd.direct = openDirect(hd.f.Name(), os.O_RDONLY) })
	return hd.direct
}

// maxHandles bounds the open-replica cache (one file descriptor each).
const maxHandles = 256

type replicaKey struct {
	id      chunk.ID
	version uint64
}

const bufSize = 1 << 20

// bufHugeLimit bounds the huge-page memory of bufs: a write-behind
// buffer for each of 64 chunks being written at once.
const bufHugeLimit = 64 << 20

var errClosed = errors.New("diskstore: store closed")

// Open opens the store rooted at dir, creating it if needed. It takes an
// exclusive lock on the directory, removes temporary files left by a crash
// and adds up the space in use. The caller must Close the store.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Capacity < 0 {
		return nil, fmt.Errorf("diskstore: negative capacity %d", opts.Capacity)
	}
	if err := os.MkdirAll(filepath.Join(dir, chunksDir), 0o755); err != nil {
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	lock, err := lockRoot(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	s := &Store{
		root:     dir,
		capacity: opts.Capacity,
		log:      log,
		lock:     lock,
		building: make(map[replicaKey]struct{}),
		handles:  make(map[replicaKey]*handle),
	}
	if s.bufs, err = hugebuf.NewBuffers(bufSize, bufHugeLimit); err != nil {
		lock.Close()
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	if err := s.scan(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	if s.spare, err = startSpares(spareRoot(dir), s); err != nil {
		lock.Close()
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	return s, nil
}

// scan removes stray temporary files and adds up the sealed replicas.
func (s *Store) scan() error {
	var used int64
	swept := 0
	err := s.eachLeaf(func(dir string, ents []os.DirEntry) error {
		for _, e := range ents {
			name := e.Name()
			switch {
			case isTemp(name):
				if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				swept++
			case e.Type().IsRegular():
				if _, _, ok := parseReplicaName(name); !ok {
					continue
				}
				fi, err := e.Info()
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						continue
					}
					return err
				}
				used += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.used.Store(used)
	if swept > 0 {
		s.log.WithField("files", swept).Info("removed temporary files left by a crash")
	}
	return nil
}

// eachLeaf calls fn with the entries of every leaf fan-out directory.
func (s *Store) eachLeaf(fn func(dir string, ents []os.DirEntry) error) error {
	top := filepath.Join(s.root, chunksDir)
	l1, err := os.ReadDir(top)
	if err != nil {
		return err
	}
	for _, a := range l1 {
		if !a.IsDir() || !isFanoutName(a.Name()) {
			continue
		}
		l2, err := os.ReadDir(filepath.Join(top, a.Name()))
		if err != nil {
			return err
		}
		for _, b := range l2 {
			if !b.IsDir() || !isFanoutName(b.Name()) {
				continue
			}
			dir := filepath.Join(top, a.Name(), b.Name())
			ents, err := os.ReadDir(dir)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return err
			}
			if err := fn(dir, ents); err != nil {
				return err
			}
		}
	}
	return nil
}

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.root }

// Close releases the directory lock. Writers still open fail at Commit.
// Close may be called more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.spare.close()
	s.hmu.Lock()
	s.hgen++
	for k := range s.handles {
		s.evictLocked(k)
	}
	s.hmu.Unlock()
	s.bufs.Close()
	return s.lock.Close()
}

// acquire returns an open handle on sealed replica (id, version), from
// the cache or freshly opened (and then cached). The caller must release
// it.
func (s *Store) acquire(id chunk.ID, version uint64) (*handle, error) {
	key := replicaKey{id, version}
	s.hmu.Lock()
	if hd := s.handles[key]; hd != nil {
		hd.refs++
		s.hmu.Unlock()
		return hd, nil
	}
	gen := s.hgen
	s.hmu.Unlock()
	f, h, err := s.open(id, version)
	if err != nil {
		return nil, err
	}
	hd := &handle{f: f, h: h, refs: 1}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.hgen == gen && s.handles[key] == nil {
		for k := range s.handles {
			if len(s.handles) < maxHandles {
				break
			}
			s.evictLocked(k)
		}
		hd.refs++
		s.handles[key] = hd
	}
	return hd, nil
}

func (s *Store) release(hd *handle) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.releaseLocked(hd)
}

func (s *Store) releaseLocked(hd *handle) {
	hd.refs--
	if hd.refs == 0 {
		hd.f.Close()
		hd.directOnce.Do(func() {}) // no direct descriptor opens after this
		if hd.direct != nil {
			hd.direct.Close()
		}
	}
}

// evictLocked drops key from the cache; readers holding it finish.
func (s *Store) evictLocked(key replicaKey) {
	if hd := s.handles[key]; hd != nil {
		delete(s.handles, key)
		s.releaseLocked(hd)
	}
}

// forget drops (id, version) from the cache and keeps handles being
// opened concurrently out of it.
func (s *Store) forget(id chunk.ID, version uint64) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.hgen++
	s.evictLocked(replicaKey{id, version})
}

func (s *Store) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return nil
}

// open opens sealed replica (id, version) and checks its header. The
// caller must close the file.
func (s *Store) open(id chunk.ID, version uint64) (*os.File, header, error) {
	if err := s.checkOpen(); err != nil {
		return nil, header{}, err
	}
	f, err := os.Open(ReplicaPath(s.root, id, version))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, header{}, fmt.Errorf("chunk %d version %d: %w", id, version, chunk.ErrNotFound)
		}
		return nil, header{}, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() <= prefetchMax {
		// A small replica's trailer is at its end and its data at its
		// start: ask for the whole file now, so that one disk read brings
		// both (readahead from the trailer would not go back for the data).
		prefetch(f, fi.Size())
	}
	if err == nil {
		var h header
		h, err = parseChunkFile(f, fi.Size())
		if err == nil && (h.id != id || h.version != version) {
			err = malformed("header names chunk %d version %d", h.id, h.version)
		}
		if err == nil {
			return f, h, nil
		}
	}
	f.Close()
	return nil, header{}, fmt.Errorf("chunk %d version %d: %w", id, version, err)
}

// Stat implements chunkserver.Store.
func (s *Store) Stat(ctx context.Context, id chunk.ID, version uint64) (chunk.Info, error) {
	if err := s.checkOpen(); err != nil {
		return chunk.Info{}, err
	}
	hd, err := s.acquire(id, version)
	if err != nil {
		return chunk.Info{}, err
	}
	defer s.release(hd)
	return hd.h.info(), nil
}

// statFile describes (id, version) from its file, bypassing the cache:
// Walk reports what is on disk now.
func (s *Store) statFile(id chunk.ID, version uint64) (chunk.Info, error) {
	f, h, err := s.open(id, version)
	if err != nil {
		return chunk.Info{}, err
	}
	f.Close()
	return h.info(), nil
}

func (h header) info() chunk.Info {
	return chunk.Info{ID: h.id, Version: h.version, Length: h.length, Summary: h.summary}
}

// ReadAt implements chunkserver.Store.
func (s *Store) ReadAt(ctx context.Context, id chunk.ID, version uint64, p []byte, off int64) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	hd, err := s.acquire(id, version)
	if err != nil {
		return 0, err
	}
	defer s.release(hd)
	return s.readAt(hd.f, hd.directFile, hd.h, p, off)
}

// readAt reads and verifies data from an open replica file.
func (s *Store) readAt(f *os.File, direct func() *os.File, h header, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: %w", off, chunk.ErrInvalid)
	}
	if off >= h.length {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	end, eof := off+int64(len(p)), false
	if end > h.length {
		end, eof = h.length, true
	}
	first, last := int(off/chunk.BlockSize), int((end-1)/chunk.BlockSize)
	crcs, err := readChecksums(f, h, first, last-first+1)
	if err != nil {
		return 0, fmt.Errorf("chunk %d version %d: %w", h.id, h.version, err)
	}
	lo := int64(first) * chunk.BlockSize
	hi := min(int64(last+1)*chunk.BlockSize, h.length)
	// Read whole blocks: straight into p when the range is block-aligned
	// (every read the chunkserver itself makes), else through a buffer.
	var buf []byte
	if lo == off && hi == end {
		buf = p[:end-off]
	} else if hi-lo <= bufSize {
		bp := s.bufs.Get()
		defer s.bufs.Put(bp)
		buf = (*bp)[:hi-lo]
	} else {
		buf = make([]byte, hi-lo)
	}
	rf := f
	if direct != nil && len(buf) >= directMin && hugebuf.Aligned(buf, DataOffset+lo) {
		// A large read, a sequential reader's, bypasses the page cache:
		// one disk read straight into buf, several of them in flight at
		// once, is faster than buffered reads and their readahead, and
		// leaves the page cache to the small reads that come back.
		if d := direct(); d != nil {
			rf = d
		}
	}
	if _, err := rf.ReadAt(buf, DataOffset+lo); err != nil {
		if errors.Is(err, io.EOF) {
			err = malformed("data truncated")
		}
		return 0, fmt.Errorf("chunk %d version %d: %w", h.id, h.version, err)
	}
	if err := verifyBlocks(h, buf, first, crcs); err != nil {
		return 0, err
	}
	n := copy(p, buf[off-lo:end-lo])
	if eof {
		return n, io.EOF
	}
	return n, nil
}

// OpenLocal implements chunkserver.LocalOpener: sealed replica (id,
// version), checked as Stat checks it, opened afresh for a reader on this
// host (package localread), with an O_DIRECT descriptor where the
// filesystem has one. The caller closes the files.
func (s *Store) OpenLocal(ctx context.Context, id chunk.ID, version uint64) (*localread.Replica, error) {
	f, h, err := s.open(id, version)
	if err != nil {
		return nil, err
	}
	return &localread.Replica{
		File:        f,
		Direct:      openDirect(f.Name(), os.O_RDONLY),
		Length:      h.length,
		DataOffset:  DataOffset,
		TableOffset: h.tableOffset(0),
		BlockSize:   chunk.BlockSize,
	}, nil
}

// Checksums implements chunkserver.Store.
func (s *Store) Checksums(ctx context.Context, id chunk.ID, version uint64, first, count int) ([]uint32, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	hd, err := s.acquire(id, version)
	if err != nil {
		return nil, err
	}
	defer s.release(hd)
	f, h := hd.f, hd.h
	if first < 0 || count < 0 {
		return nil, fmt.Errorf("checksums [%d, +%d): %w", first, count, chunk.ErrInvalid)
	}
	n := chunk.Blocks(h.length)
	if first >= n {
		return nil, nil
	}
	count = min(count, n-first)
	crcs, err := readChecksums(f, h, first, count)
	if err != nil {
		return nil, fmt.Errorf("chunk %d version %d: %w", id, version, err)
	}
	return crcs, nil
}

// Sync implements chunkserver.Store.
func (s *Store) Sync(ctx context.Context, id chunk.ID, version uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	hd, err := s.acquire(id, version)
	if err != nil {
		return err
	}
	defer s.release(hd)
	if err := hd.f.Sync(); err != nil {
		return ioError("fsync", err)
	}
	if err := syncDir(replicaDir(s.root, id)); err != nil {
		return ioError("fsync directory", err)
	}
	return nil
}

// Delete implements chunkserver.Store.
func (s *Store) Delete(ctx context.Context, id chunk.ID, version uint64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.forget(id, version)
	path := ReplicaPath(s.root, id, version)
	fi, err := os.Stat(path)
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("chunk %d version %d: %w", id, version, chunk.ErrNotFound)
		}
		return err
	}
	s.used.Add(-fi.Size())
	return nil
}

// Walk implements chunkserver.Store.
func (s *Store) Walk(ctx context.Context, fn func(chunk.Info, error) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.eachLeaf(func(dir string, ents []os.DirEntry) error {
		for _, e := range ents {
			id, version, ok := parseReplicaName(e.Name())
			if !ok {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			info, err := s.statFile(id, version)
			switch {
			case err == nil:
				err = fn(info, nil)
			case errors.Is(err, chunk.ErrNotFound):
				continue // deleted since the listing
			case errors.Is(err, chunk.ErrCorrupt):
				err = fn(chunk.Info{ID: id, Version: version}, err)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Usage implements chunkserver.Store. Without a configured capacity it is
// the size of the filesystem.
func (s *Store) Usage(ctx context.Context) (capacity, used int64, err error) {
	capacity = s.capacity
	if capacity == 0 {
		if capacity, err = fsSize(s.root); err != nil {
			return 0, 0, err
		}
	}
	return capacity, s.used.Load(), nil
}

// reserve claims n more bytes of capacity, or fails marked ErrNoSpace.
func (s *Store) reserve(n int64) error {
	if s.capacity == 0 || n <= 0 {
		s.used.Add(n)
		return nil
	}
	for {
		cur := s.used.Load()
		if cur+n > s.capacity {
			return fmt.Errorf("%d bytes more would exceed the %d-byte capacity (%d used): %w",
				n, s.capacity, cur, chunk.ErrNoSpace)
		}
		if s.used.CompareAndSwap(cur, cur+n) {
			return nil
		}
	}
}

// ensureDir makes the fan-out directory for id, fsyncing each parent that
// gains an entry, so a replica renamed into it is reachable after a crash.
func (s *Store) ensureDir(id chunk.ID) (string, error) {
	dir := replicaDir(s.root, id)
	if _, ok := s.dirs.Load(dir); ok {
		return dir, nil
	}
	mid := filepath.Dir(dir)
	for _, d := range []string{mid, dir} {
		err := os.Mkdir(d, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return "", err
		}
	}
	s.dirs.Store(dir, struct{}{})
	return dir, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ioError marks err chunk.ErrNoSpace when the filesystem is full.
func ioError(op string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%s: %w: %w", op, chunk.ErrNoSpace, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

package client

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	shoalpb "github.com/shoalfs/shoal/proto"
	"github.com/sirupsen/logrus"
)

// defaultChunkSize is used for a file whose attributes carry no chunk size.
const defaultChunkSize = 64 << 20

// File is an open regular file. It is safe for concurrent use: ReadAt,
// WriteAt, Truncate, Sync and Size may be called from several goroutines
// (the mount does). See doc.go for what is durable when.
type File struct {
	c   *Client
	ino Ino
	cs  int64 // chunk size
	log *logrus.Entry

	// ctx is the lifetime of the file's goroutines (chunk writers,
	// readahead); Close cancels it after the last Sync, Client.Close
	// through its parent.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the file starts

	// mu guards everything below. It is never held across an RPC or a
	// wait. Lock order: File.mu, then budget.mu.
	mu       sync.Mutex
	attr     Attr  // the attributes as last known from the manager
	stale    bool  // attr's link count may be out of date (StaleAttr)
	size     int64 // the size as last known from the manager
	wend     int64 // end of the furthest write not yet known to the manager
	layout   map[uint64]*chunkLoc
	layoutOK bool              // layout is loaded (false: fetch before reading)
	layoutAt time.Time         // when the layout was fetched
	layoutV  uint64            // bumped on every local change to layout/size
	open     map[uint64]*gen   // per chunk index, the generation taking writes
	sealed   map[uint64][]*gen // per chunk index, sealed and unfinished, oldest first
	queue    []*gen            // sealed generations in seal order, to commit in that order
	commits  bool              // a goroutine is running commitLoop
	werr     error             // the first failed write; reported by Sync and Close
	closed   bool
	ra       readahead
	// overlaysHeld counts reads copying buffered writes into their result
	// outside mu (readOnce): while any does, no generation's buffers are
	// recycled.
	overlaysHeld int
	// mtime, when not 0, is the modification time (ns) commits set
	// instead of the time of the commit: the caller set it (SetMtime)
	// after its last write. The next write clears it.
	mtime int64

	// unsynced lists the chunks this File committed since its last Sync:
	// sealed on their replicas but perhaps not yet on their disks.
	// syncedAll says a Sync has covered the whole layout once (the first
	// Sync also covers what earlier opens wrote and only closed).
	unsynced  []*chunkLoc
	syncedAll bool

	// first is chunk 0's allocation handed out with the create
	// (OpenCreated), until a write-out of chunk 0 takes it (takeFirst).
	first *firstChunk

	// pending holds attribute changes made while the file had unflushed
	// writes (DeferAttr), for the next commit to carry, or Flush.
	pending SetAttr
	// sending holds the pending changes a commit or Flush is sending:
	// still this client's view until the reply's attributes, which
	// include them, replace f.attr.
	sending SetAttr

	// commitMu is held across each CommitChunks call (only commitLoop
	// makes them, one at a time), so that SetMtime can wait out a
	// commit that was built before it. Lock order: commitMu, then mu.
	commitMu sync.Mutex
}

// Open opens the regular file ino for reading and writing, fetching its
// layout afresh (close-to-open consistency). The caller must Close it.
func (c *Client) Open(ctx context.Context, ino Ino) (*File, error) {
	f, cancel := c.newFile(ino)
	attr, err := f.fetchLayout(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return f.opened(attr, cancel)
}

// OpenCreated opens a regular file that a Create call just returned as
// e. An empty file has an empty layout, so it is opened without asking
// the manager (a file of any other size is opened as Open does): for a
// newly created file, creating and opening it is one round trip. If the
// create handed out chunk 0's allocation (CreateOptions.Allocate), the
// File writes chunk 0 out on it, sparing that round trip too; only the
// first File opened from e does. The caller must Close it.
func (c *Client) OpenCreated(ctx context.Context, e Entry) (*File, error) {
	if e.Size != 0 {
		return c.Open(ctx, e.Ino)
	}
	f, cancel := c.newFile(e.Ino)
	f.layout = make(map[uint64]*chunkLoc)
	f.layoutOK = true
	f.layoutAt = time.Now()
	f.layoutV++
	f.first = e.first
	return f.opened(e.Attr, cancel)
}

func (c *Client) newFile(ino Ino) (*File, context.CancelFunc) {
	ctx2, cancel := context.WithCancel(c.ctx)
	f := &File{
		c:      c,
		ino:    ino,
		log:    c.log.WithField("ino", uint64(ino)),
		ctx:    ctx2,
		cancel: cancel,
		open:   make(map[uint64]*gen),
		sealed: make(map[uint64][]*gen),
	}
	f.ra.pages = make(map[pageKey]*page)
	f.ra.bufs = c.runs
	return f, cancel
}

// opened finishes opening f, whose attributes are attr.
func (f *File) opened(attr Attr, cancel context.CancelFunc) (*File, error) {
	c, ino := f.c, f.ino
	if attr.IsDir() {
		cancel()
		return nil, opErr("open", inoPath(ino), syscall.EISDIR)
	}
	if attr.Mode&modeType != modeRegular && attr.Mode&modeType != 0 {
		cancel()
		return nil, opErr("open", inoPath(ino), fmt.Errorf("%w: not a regular file (mode %o)", syscall.EINVAL, attr.Mode))
	}
	f.attr, f.stale = attr, false
	f.cs = int64(attr.ChunkSize)
	if f.cs <= 0 {
		f.cs = defaultChunkSize
	}
	if err := c.register(f); err != nil {
		cancel()
		return nil, opErr("open", inoPath(ino), err)
	}
	return f, nil
}

// Ino returns the file's inode number.
func (f *File) Ino() Ino { return f.ino }

// Size returns the file size including writes not yet synced.
func (f *File) Size() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return max(f.size, f.wend)
}

// fetchLayout loads the whole layout and the attributes from the manager.
func (f *File) fetchLayout(ctx context.Context) (Attr, error) {
	f.mu.Lock()
	v := f.layoutV
	f.mu.Unlock()
	var resp *shoalpb.GetLayoutResponse
	err := f.c.do(ctx, "getlayout", inoPath(f.ino), func(ctx context.Context) (err error) {
		resp, err = f.c.mgr.GetLayout(ctx, &shoalpb.GetLayoutRequest{Ino: uint64(f.ino)})
		return err
	})
	if err != nil {
		return Attr{}, err
	}
	attr := attrFromPB(resp.GetAttr())
	layout := make(map[uint64]*chunkLoc, len(resp.GetChunks()))
	for _, c := range resp.GetChunks() {
		layout[c.GetIndex()] = chunkLocFromPB(c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.layoutV != v && f.layoutOK {
		// A local commit or truncate raced with the fetch: what we have
		// is at least as new. The next error or Open fetches again.
		return attr, nil
	}
	f.layout = layout
	f.attr, f.stale = attr, false
	f.size = int64(attr.Size)
	f.layoutOK = true
	f.layoutAt = time.Now()
	f.layoutV++
	return attr, nil
}

// invalidateLocked makes the next read fetch the layout.
func (f *File) invalidateLocked() {
	f.layoutOK = false
	f.layoutV++
	f.ra.clearLocked()
}

// Flush seals every chunk written since the last Flush and commits it.
// When it returns nil, everything written before the call is sealed on at
// least the manager's minimum of replicas and the manager has the layout
// and size: another client that opens the file reads it, and it survives
// a crash of any process. It is on disk once Sync returns. A write that
// failed in the background is reported here (and by every later Flush,
// Sync and Close).
func (f *File) Flush(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return opErr("fsync", inoPath(f.ino), fmt.Errorf("%w (%w)", ErrClosed, syscall.EBADF))
	}
	for _, g := range f.open {
		f.sealLocked(g)
	}
	wait := append([]*gen(nil), f.queue...)
	f.mu.Unlock()
	for _, g := range wait {
		select {
		case <-g.done:
		case <-ctx.Done():
			return opErr("fsync", inoPath(f.ino), ctxErr(ctx))
		}
	}
	f.mu.Lock()
	werr, pend := f.werr, f.pending
	f.pending = SetAttr{}
	if werr == nil {
		f.sending = pend
	}
	f.mu.Unlock()
	if werr != nil || pend == (SetAttr{}) {
		return werr
	}
	attr, err := f.c.SetAttr(ctx, f.ino, pend)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sending = SetAttr{}
	if err != nil {
		f.pending = mergeAttr(pend, f.pending) // the next Flush tries again
		return err
	}
	f.attr, f.stale = attr, false
	return nil
}

// Attr returns the file's attributes as this client sees them: the last
// ones the manager returned to it (at open, commit or a flush), with
// the size including unflushed writes and the changes DeferAttr holds.
func (f *File) Attr() Attr {
	f.mu.Lock()
	defer f.mu.Unlock()
	// One look under the lock: a commit that ends in between replaces
	// f.attr and clears f.sending together, and attributes read before
	// it with changes read after it would lose what it carried.
	a := f.attr
	a.Size = uint64(max(f.size, f.wend))
	return f.withPendingLocked(a)
}

// DeferAttr records attribute changes (not the size) to go with the
// data written before them, instead of a manager call now: the next
// commit carries them (CommitChunksRequest.set), or the next Flush
// applies them if no commit follows. It defers nothing and reports false
// when the file has no unflushed writes and no deferred changes still on
// their way: the caller sets them at once.
// tar sets the times, owner and mode of every file it writes, on the
// open descriptor, before closing it: three manager round trips become
// none. Until then the changes are this client's alone (see Attr); other
// clients see them after the flush, as they see the data.
func (f *File) DeferAttr(s SetAttr) bool {
	if s.Size != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Changes already deferred and not yet on the manager (pending, or
	// sending in a commit or a Flush) make this one wait with them even
	// once the writes are out: set at once, it would reach the manager
	// but not this client's view, which shows the deferred changes over
	// the attributes of the last reply until they land (LocalAttr).
	ahead := f.pending != (SetAttr{}) || f.sending != (SetAttr{})
	if !f.unflushedLocked() && !(ahead && !f.closed && f.werr == nil) {
		return false
	}
	f.pending = mergeAttr(f.pending, s)
	return true
}

// LocalAttr returns Attr and true while this client's view of the file
// is ahead of the manager's (it has writes or attribute changes not yet
// flushed) and otherwise current, so that the caller need not ask the
// manager; false otherwise, and after StaleAttr until the next reply
// refreshes the attributes.
func (f *File) LocalAttr() (Attr, bool) {
	f.mu.Lock()
	ok := !f.stale && (f.unflushedLocked() || f.pending != (SetAttr{}) || f.sending != (SetAttr{}))
	f.mu.Unlock()
	if !ok {
		return Attr{}, false
	}
	return f.Attr(), true
}

// StaleAttr says the file's link count changed (a link or unlink made
// through this client): LocalAttr declines until fresh attributes come.
func (f *File) StaleAttr() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stale = true
}

func (f *File) unflushedLocked() bool {
	return !f.closed && f.werr == nil && (len(f.open) > 0 || len(f.queue) > 0)
}

// WithPending returns a with the changes DeferAttr holds applied,
// including those on their way to the manager.
func (f *File) WithPending(a Attr) Attr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.withPendingLocked(a)
}

func (f *File) withPendingLocked(a Attr) Attr {
	p := mergeAttr(f.sending, f.pending)
	if p.Mode != nil {
		a.Mode = a.Mode&modeType | *p.Mode&0o7777
	}
	if p.UID != nil {
		a.UID = *p.UID
	}
	if p.GID != nil {
		a.GID = *p.GID
	}
	if p.Atime != nil {
		a.Atime = *p.Atime
	}
	if p.Mtime != nil {
		a.Mtime = *p.Mtime
	}
	return a
}

// mergeAttr is a with the fields b sets replaced.
func mergeAttr(a, b SetAttr) SetAttr {
	for _, f := range []struct{ dst, src **uint32 }{{&a.Mode, &b.Mode}, {&a.UID, &b.UID}, {&a.GID, &b.GID}} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
	if b.Size != nil {
		a.Size = b.Size
	}
	if b.Atime != nil {
		a.Atime = b.Atime
	}
	if b.Mtime != nil {
		a.Mtime = b.Mtime
	}
	return a
}

// SetMtime prepares for the caller to set the file's modification time
// to t with SetAttr after writing: commits of what was written before
// the call will set t rather than the time they happen, until the next
// write. It waits for a commit already under way (which would set its
// own time), and starts sending what is buffered, without waiting for
// it: so setting times no longer costs a Sync, and a later Sync or Close
// finds the data on its way. A t that commits cannot carry (the epoch,
// which CommitChunks reads as "now") is handled by a Sync instead.
func (f *File) SetMtime(ctx context.Context, t time.Time) error {
	ns := t.UnixNano()
	if ns == 0 {
		return f.Flush(ctx)
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return f.errClosed("utimens")
	}
	f.mtime = ns
	for _, g := range f.open {
		f.sealLocked(g)
	}
	werr := f.werr
	f.mu.Unlock()
	f.commitMu.Lock()
	f.commitMu.Unlock() //nolint:staticcheck // an empty critical section: wait for the commit in flight
	return werr
}

// Close flushes the file, then stops its goroutines and releases it. It
// returns Flush's error. After Close the File may not be used; Close may
// be called more than once (a later call returns the first failed write,
// if any, or nil). After Client.Close, it reports the lost writes.
func (f *File) Close(ctx context.Context) error {
	f.mu.Lock()
	closed, werr := f.closed, f.werr
	f.mu.Unlock()
	if closed {
		f.wg.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.werr != nil {
			return f.werr
		}
		return werr
	}
	err := f.Flush(ctx)
	f.mu.Lock()
	f.closed = true
	f.ra.clearLocked()
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	f.c.unregister(f)
	return err
}

// Truncate flushes buffered writes, then sets the file size on the
// manager (which trims or extends the layout).
func (f *File) Truncate(ctx context.Context, size int64) error {
	if size < 0 {
		return opErr("truncate", inoPath(f.ino), syscall.EINVAL)
	}
	if err := f.Flush(ctx); err != nil {
		return err
	}
	s := uint64(size)
	attr, err := f.c.SetAttr(ctx, f.ino, SetAttr{Size: &s})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attr, f.stale = attr, false
	f.size = int64(attr.Size)
	f.wend = min(f.wend, f.size)
	f.invalidateLocked()
	return nil
}

// errClosedFile is returned by calls on a closed File.
func (f *File) errClosed(op string) error {
	return opErr(op, inoPath(f.ino), fmt.Errorf("%w (%w)", ErrClosed, syscall.EBADF))
}

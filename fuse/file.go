package fuse

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/shoalfs/shoal/client"
)

// fileSystem is the state one mount shares between its nodes.
type fileSystem struct {
	c   *client.Client
	o   Options
	log *logrus.Entry

	// mu guards files and busy, and every openFile's refs and unlinked.
	// It is never held across an RPC.
	mu    sync.Mutex
	files map[client.Ino]*openFile
	// busy holds a channel for each inode being opened or closed; it is
	// closed when that is done. Another open of the inode waits for it,
	// so that it shares the client.File being opened, or reads what the
	// one being closed committed.
	busy map[client.Ino]chan struct{}
	// removing holds a channel for each inode that an unlink or rename
	// found not open here and may remove for good (pinOrHold); opens of
	// it wait until that call is answered, so that none slips in between
	// the check and the removal and holds a handle to a deleted inode.
	removing map[client.Ino]chan struct{}

	// unlinks removes files in the background (see unlinker).
	unlinks *unlinker
}

// newFileSystem starts the unlinker's worker; unlinks.close stops it.
func newFileSystem(c *client.Client, o Options) *fileSystem {
	fs := &fileSystem{
		c: c, o: o, log: o.logger(),
		files: make(map[client.Ino]*openFile),
		busy:  make(map[client.Ino]chan struct{}),

		removing: make(map[client.Ino]chan struct{}),
	}
	fs.unlinks = newUnlinker(fs)
	return fs
}

// openFile is an inode open in this mount. Every handle on the inode
// shares its client.File, so what one handle writes (still buffered in
// the client) the others read, and the size the kernel sees includes it.
type openFile struct {
	ino client.Ino
	f   *client.File

	refs     int  // handles and pins; guarded by fileSystem.mu
	unlinked bool // a name was removed with keepOpen while open: ReleaseInode on close; guarded by fileSystem.mu

	// appendMu serialises O_APPEND writes: reading the size and writing
	// there is one step.
	appendMu sync.Mutex
}

// errno maps err (see errno) and logs what deserves it: unknown errors,
// and EIO, which means the cluster did not answer in time.
func (fs *fileSystem) errno(err error, op string, ino client.Ino, name string) syscall.Errno {
	e, known := errno(err)
	if !known || e == syscall.EIO {
		l := fs.log.WithFields(logrus.Fields{"op": op, "ino": ino})
		if name != "" {
			l = l.WithField("name", name)
		}
		if !known {
			l.WithError(err).Error("unexpected error, returning EIO")
		} else {
			l.WithError(err).Warn("I/O error")
		}
	}
	return e
}

// fillAttr copies a into out. The size of an inode open here is its
// client.File's, which includes writes not yet committed.
func (fs *fileSystem) fillAttr(out *gofuse.Attr, a client.Attr) {
	if a.Mode&syscall.S_IFMT == syscall.S_IFREG {
		if of := fs.openFile(a.Ino); of != nil {
			// Unflushed writes and attribute changes count.
			a = of.f.WithPending(a)
			a.Size = uint64(of.f.Size())
		}
	}
	out.Ino = uint64(a.Ino)
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid = a.UID
	out.Gid = a.GID
	out.Rdev = a.Rdev
	out.Size = a.Size // for a symlink, its target's length (the manager records it)
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
	out.Blksize = fs.o.blksize()
	out.Blocks = (a.Size + 4095) / 4096 * 8 // 512-byte units, whole pages (go-fuse's rule)
}

// openFile returns ino's open file, nil if no handle has it open. The
// caller holds no reference: the file may close meanwhile (its methods
// stay safe to call).
func (fs *fileSystem) openFile(ino client.Ino) *openFile {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.files[ino]
}

// acquire returns the inode's openFile with one more reference, opening
// a client.File if no handle has it open. created, if not nil, is what a
// Create call just returned for ino (which spares the manager a layout
// fetch for a new, empty file, and may carry its first chunk's
// allocation).
func (fs *fileSystem) acquire(ctx context.Context, ino client.Ino, created *client.Entry) (*openFile, error) {
	for {
		fs.mu.Lock()
		if of := fs.files[ino]; of != nil {
			of.refs++
			fs.mu.Unlock()
			return of, nil
		}
		ch := fs.busy[ino]
		if ch == nil {
			ch = fs.removing[ino]
		}
		if ch != nil {
			fs.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch = make(chan struct{})
		fs.busy[ino] = ch
		fs.mu.Unlock()

		var f *client.File
		var err error
		if created != nil {
			f, err = fs.c.OpenCreated(ctx, *created)
		} else {
			f, err = fs.c.Open(ctx, ino)
		}

		fs.mu.Lock()
		delete(fs.busy, ino)
		close(ch)
		var of *openFile
		if err == nil {
			of = &openFile{ino: ino, f: f, refs: 1}
			fs.files[ino] = of
		}
		fs.mu.Unlock()
		return of, err
	}
}

// pin returns the inode's openFile with one more reference, or nil if
// it is not open here. An open or close of the inode in progress is
// waited for: an unlink must not miss a handle that is being opened.
func (fs *fileSystem) pin(ino client.Ino) *openFile {
	for {
		fs.mu.Lock()
		if of := fs.files[ino]; of != nil {
			of.refs++
			fs.mu.Unlock()
			return of
		}
		ch := fs.busy[ino]
		fs.mu.Unlock()
		if ch == nil {
			return nil
		}
		// Bounded: the open or close is bounded by the client's
		// OpTimeout.
		<-ch
	}
}

// pinOrHold is pin for an unlink or rename that may remove ino: if the
// inode is not open here, it holds off opens of it until the returned
// function is called, after the manager has answered.
func (fs *fileSystem) pinOrHold(ino client.Ino) (*openFile, func()) {
	for {
		if of := fs.pin(ino); of != nil {
			return of, func() {}
		}
		fs.mu.Lock()
		if fs.files[ino] != nil || fs.busy[ino] != nil {
			fs.mu.Unlock()
			continue // opened meanwhile: pin it
		}
		if ch := fs.removing[ino]; ch != nil {
			fs.mu.Unlock()
			<-ch // another removal of it is under way (bounded by OpTimeout)
			continue
		}
		ch := make(chan struct{})
		fs.removing[ino] = ch
		fs.mu.Unlock()
		return nil, func() {
			fs.mu.Lock()
			delete(fs.removing, ino)
			fs.mu.Unlock()
			close(ch)
		}
	}
}

// waitRemoval waits until an unlink or rename that may remove ino
// (pinOrHold's hold) is answered, queued unlinks included.
func (fs *fileSystem) waitRemoval(ino client.Ino) {
	fs.mu.Lock()
	ch := fs.removing[ino]
	fs.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// release drops a reference. The last one closes the client.File
// (committing its data) and, if the inode lost its last name while
// open, tells the manager it may now delete it.
func (fs *fileSystem) release(ctx context.Context, of *openFile) {
	fs.mu.Lock()
	of.refs--
	if of.refs > 0 {
		fs.mu.Unlock()
		return
	}
	delete(fs.files, of.ino)
	unlinked := of.unlinked
	ch := make(chan struct{})
	fs.busy[of.ino] = ch
	fs.mu.Unlock()

	fs.close(ctx, of, unlinked)

	fs.mu.Lock()
	delete(fs.busy, of.ino)
	close(ch)
	fs.mu.Unlock()
}

func (fs *fileSystem) close(ctx context.Context, of *openFile, unlinked bool) {
	l := fs.log.WithField("ino", of.ino)
	if err := of.f.Close(ctx); err != nil {
		// Flush and Fsync already reported errors to the caller; the
		// kernel ignores what Release returns.
		l.WithError(err).Warn("close")
	}
	if unlinked {
		if err := fs.c.ReleaseInode(ctx, of.ino); err != nil {
			l.WithError(err).Warn("release unlinked inode")
		}
	}
}

// settleRemoved finishes an unlink or rename that was told to keep the
// inode it removed a name of (ino) because this mount has it open
// (pinned). The manager keeps an inode whose last link went away with
// keepOpen until ReleaseInode, which does nothing for an inode that
// still has links: so the last release of pinned calls it. If the call
// failed, or pinned is nil (keepOpen was false), there is nothing to do
// but drop the pin.
func (fs *fileSystem) settleRemoved(ctx context.Context, pinned *openFile, ino client.Ino, ok bool) {
	if pinned == nil {
		return
	}
	if ok {
		pinned.f.StaleAttr() // its link count changed
	}
	switch {
	case !ok:
	case ino == 0 || ino == pinned.ino:
		// 0: a retried call whose first attempt succeeded; the name
		// was pinned's.
		fs.mu.Lock()
		pinned.unlinked = true
		fs.mu.Unlock()
	default:
		// The name changed between our look and the manager's (another
		// mount replaced it): the manager kept an inode we did not pin.
		if other := fs.pin(ino); other != nil {
			other.f.StaleAttr()
			fs.mu.Lock()
			other.unlinked = true
			fs.mu.Unlock()
			fs.release(ctx, other)
		} else if err := fs.c.ReleaseInode(ctx, ino); err != nil {
			fs.log.WithField("ino", ino).WithError(err).Warn("release inode")
		}
	}
	fs.release(ctx, pinned)
}

// open opens a handle on ino for a kernel OPEN.
func (fs *fileSystem) open(ctx context.Context, ino client.Ino, flags uint32, mayTruncate bool) (*handle, syscall.Errno) {
	return fs.openWith(ctx, ino, nil, flags, mayTruncate)
}

// openCreated opens a handle for a kernel CREATE on the file a Create
// call returned.
func (fs *fileSystem) openCreated(ctx context.Context, e client.Entry, flags uint32) (*handle, syscall.Errno) {
	return fs.openWith(ctx, e.Ino, &e, flags, e.Size > 0)
}

func (fs *fileSystem) openWith(ctx context.Context, ino client.Ino, created *client.Entry, flags uint32, mayTruncate bool) (*handle, syscall.Errno) {
	ctx = mutating(ctx)
	of, err := fs.acquire(ctx, ino, created)
	if err != nil {
		return nil, fs.errno(err, "open", ino, "")
	}
	// The kernel sends O_TRUNC as a SETATTR before OPEN (go-fuse does
	// not ask for atomic_o_trunc); this covers kernels that do not.
	if flags&syscall.O_TRUNC != 0 && mayTruncate && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if err := of.f.Truncate(ctx, 0); err != nil {
			fs.release(ctx, of)
			return nil, fs.errno(err, "open truncate", ino, "")
		}
	}
	return &handle{fs: fs, of: of, flags: flags}, 0
}

// syncAll commits the data of every open file and makes it durable.
func (fs *fileSystem) syncAll(ctx context.Context) error {
	var errs []error
	for _, of := range fs.pinAll() {
		if err := of.f.Sync(ctx); err != nil {
			errs = append(errs, err)
		}
		fs.release(ctx, of)
	}
	return errors.Join(errs...)
}

func (fs *fileSystem) pinAll() []*openFile {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var ofs []*openFile
	for _, of := range fs.files {
		of.refs++
		ofs = append(ofs, of)
	}
	return ofs
}

// closeAll closes the files the kernel never released (a mount
// aborted or detached while they were open).
func (fs *fileSystem) closeAll(ctx context.Context) {
	fs.mu.Lock()
	ofs := fs.files
	fs.files = make(map[client.Ino]*openFile)
	fs.mu.Unlock()
	for _, of := range ofs {
		fs.close(ctx, of, of.unlinked)
	}
}

// handle is one open(2) of a regular file.
type handle struct {
	fs    *fileSystem
	of    *openFile
	flags uint32
}

var (
	_ gofs.FileReader    = (*handle)(nil)
	_ gofs.FileWriter    = (*handle)(nil)
	_ gofs.FileFlusher   = (*handle)(nil)
	_ gofs.FileFsyncer   = (*handle)(nil)
	_ gofs.FileReleaser  = (*handle)(nil)
	_ gofs.FileAllocater = (*handle)(nil)
)

func (h *handle) writable() bool { return h.flags&syscall.O_ACCMODE != syscall.O_RDONLY }

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	// A sequential read's bytes come back as slices of the client's
	// readahead pages, which go to the kernel as they are: no copy into
	// dest.
	parts, release, n, err := h.of.f.ReadAtVec(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		release()
		return nil, h.fs.errno(err, "read", h.of.ino, "")
	}
	if parts == nil {
		parts = [][]byte{dest[:n]}
	}
	return &pagesResult{parts: parts, release: release}, 0
}

// pagesResult is a read's reply: its parts go to the kernel in one
// writev (go-fuse's withSlice), and Done, which go-fuse calls once they
// are written, lets the client reuse the pages they come from. (A vector
// and not a ReadResultData: go-fuse v2.12 tries to splice the latter,
// writing the reply header into a pipe, finding no file to splice from,
// draining the pipe and then writing the reply anyway, three wasted
// syscalls per read.)
type pagesResult struct {
	parts   [][]byte
	release func()
}

func (r *pagesResult) Size() int {
	n := 0
	for _, p := range r.parts {
		n += len(p)
	}
	return n
}

func (r *pagesResult) Bytes(buf []byte) ([]byte, gofuse.Status) {
	buf = buf[:0]
	for _, p := range r.parts {
		buf = append(buf, p...)
	}
	return buf, gofuse.OK
}

// Slices is what go-fuse's writev path asks for.
func (r *pagesResult) Slices() ([][]byte, gofuse.Status) { return r.parts, gofuse.OK }

func (r *pagesResult) Done() { r.release() }

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	ctx = mutating(ctx)
	if h.flags&syscall.O_APPEND != 0 {
		// The kernel writes at the size it cached; the file may have
		// grown since (another handle's buffered writes). Append at the
		// size the client knows.
		h.of.appendMu.Lock()
		defer h.of.appendMu.Unlock()
		off = h.of.f.Size()
	}
	n, err := h.of.f.WriteAt(ctx, data, off)
	if err != nil {
		return uint32(n), h.fs.errno(err, "write", h.of.ino, "")
	}
	return uint32(n), 0
}

// Flush runs on every close(2) of a descriptor: a writer's data is
// committed before close returns, so another mount that opens the file
// afterwards reads it (close-to-open consistency), and a failed commit
// is reported by close. It is sealed on the replicas, not yet fsynced
// there: that is Fsync's work (see docs/DURABILITY.md).
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	if !h.writable() {
		return 0
	}
	if err := h.of.f.Flush(mutating(ctx)); err != nil {
		return h.fs.errno(err, "flush", h.of.ino, "")
	}
	return 0
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if err := h.of.f.Sync(mutating(ctx)); err != nil {
		return h.fs.errno(err, "fsync", h.of.ino, "")
	}
	return 0
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.fs.release(mutating(ctx), h.of)
	return 0
}

// Allocate supports mode 0 (extend the size, the new range reading as
// zeros, as chunks are allocated on write anyway) and KEEP_SIZE (a
// no-op); holes cannot be punched.
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	const keepSize = 0x01 // FALLOC_FL_KEEP_SIZE
	switch mode {
	case 0:
		ctx = mutating(ctx)
		end := int64(off + size)
		h.of.appendMu.Lock()
		defer h.of.appendMu.Unlock()
		if end > h.of.f.Size() {
			if err := h.of.f.Truncate(ctx, end); err != nil {
				return h.fs.errno(err, "fallocate", h.of.ino, "")
			}
		}
		return 0
	case keepSize:
		return 0
	}
	return syscall.EOPNOTSUPP
}

package fuse

import (
	"context"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/shoalfs/shoal/client"
)

// node is one inode of the mount: a directory, a regular file, a
// symlink or a special file. One type serves every kind, as go-fuse's
// loopback does; the kernel only sends each kind the operations that
// make sense for it.
type node struct {
	gofs.Inode
	fs *fileSystem

	// mode and gid are the permission bits and group last reported for
	// this inode; a directory's set-group-ID bit and group are what a new
	// child inherits. Stale values only matter if another mount changes
	// the bit within the attribute timeout.
	mode atomic.Uint32
	gid  atomic.Uint32

	// target is a symlink's target, once known. A symlink never
	// changes and inode numbers are never reused, so it stays valid.
	target atomic.Pointer[string]

	// dir remembers a directory's attributes from the replies to the
	// changes made in it through this mount (see dirattr.go).
	dir dirAttrs
	// fresh knows a directory this mount just made (see newdir.go).
	fresh newDir
}

var (
	_ gofs.InodeEmbedder      = (*node)(nil)
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeMknoder        = (*node)(nil)
	_ gofs.NodeRmdirer        = (*node)(nil)
	_ gofs.NodeUnlinker       = (*node)(nil)
	_ gofs.NodeRenamer        = (*node)(nil)
	_ gofs.NodeSymlinker      = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
	_ gofs.NodeLinker         = (*node)(nil)
	_ gofs.NodeStatfser       = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
)

func (n *node) ino() client.Ino { return client.Ino(n.StableAttr().Ino) }

// isDir reports whether n is a directory (the root's StableAttr has no
// type bits, so this asks the remembered mode).
func (n *node) isDir() bool { return n.mode.Load()&syscall.S_IFMT == syscall.S_IFDIR }

// changing announces a call that changes the names in directory n (or its
// attributes); the function it returns takes the directory's attributes
// the reply reported, nil if none. See dirAttrs.
func (n *node) changing() func(attr *client.Attr) {
	n.dir.begin()
	return n.dir.end
}

// nodeOf returns the node of ch, nil if ch is nil.
func nodeOf(ch *gofs.Inode) *node {
	if ch == nil {
		return nil
	}
	cn, _ := ch.Operations().(*node)
	return cn
}

// remember records the attributes a new child inherits from n.
func (n *node) remember(a client.Attr) {
	n.mode.Store(a.Mode)
	n.gid.Store(a.GID)
	if a.Mode&syscall.S_IFMT == syscall.S_IFLNK && a.Target != "" {
		n.target.Store(&a.Target)
	}
}

// mutating detaches an operation that changes state from the kernel's
// interrupt: the caller gets the real outcome, not an EINTR after the
// manager already applied the change. The client's OpTimeout still
// bounds it, so it cannot hang.
func mutating(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// lookup detaches a short metadata call (lookup, getattr, open,
// readlink) from the kernel's interrupt too. Any signal can interrupt a
// FUSE request, including the preemption signals the Go runtime sends its
// own threads, and few callers of open(2) or stat(2) expect EINTR (go-fuse's
// posixtest saw it from an open). Reads of data stay interruptible, so
// Ctrl-C ends a long cat at once; the client's OpTimeout bounds these.
func lookup(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// owner returns who creates a new child of n: the caller, with the
// group of n if n is set-group-ID (as on a local disk). dirMode is the
// set-group-ID bit a new directory inherits.
func (n *node) owner(ctx context.Context) (uid, gid, dirMode uint32) {
	if c, ok := gofuse.FromContext(ctx); ok {
		uid, gid = c.Uid, c.Gid
	}
	if n.mode.Load()&syscall.S_ISGID != 0 {
		gid, dirMode = n.gid.Load(), syscall.S_ISGID
	}
	return uid, gid, dirMode
}

// child returns the Inode for a, with out filled in. If the kernel
// already knows the inode, go-fuse keeps the existing one.
func (n *node) child(ctx context.Context, name string, a client.Attr, out *gofuse.EntryOut) *gofs.Inode {
	n.fresh.added(name)
	n.fs.fillAttr(&out.Attr, a)
	if old := n.GetChild(name); old != nil && old.StableAttr().Ino == uint64(a.Ino) {
		if on, ok := old.Operations().(*node); ok {
			on.remember(a)
		}
	}
	ch := &node{fs: n.fs}
	ch.remember(a)
	return n.NewInode(ctx, ch, stableAttr(a))
}

func stableAttr(a client.Attr) gofs.StableAttr {
	// Inode numbers are the manager's, which it never reuses; so the
	// generation is constant.
	return gofs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: uint64(a.Ino), Gen: 1}
}

func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.fresh.absent(name) {
		return nil, syscall.ENOENT
	}
	n.fs.unlinks.waitName(n.ino(), name)
	ctx = lookup(ctx)
	a, err := n.fs.c.Lookup(ctx, n.ino(), name)
	if err != nil {
		return nil, n.fs.errno(err, "lookup", n.ino(), name)
	}
	return n.child(ctx, name, a, out), 0
}

// Getattr answers a directory's GETATTR from the attributes the reply to
// the last change made in it here reported, if they are recent (see
// dirAttrs): that is the GETATTR the kernel sends after every create and
// unlink, for its permission check of the next one. Otherwise it asks the
// manager, and a directory remembers the answer.
func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	ctx = lookup(ctx)
	dir := n.isDir()
	if dir {
		if a, valid, ok := n.dir.get(n.fs.o.AttrTimeout); ok {
			n.fs.fillAttr(&out.Attr, a)
			// The kernel keeps them no longer than AttrTimeout after
			// the manager's reply.
			out.SetTimeout(valid)
			return 0
		}
		n.fs.unlinks.waitDir(n.ino())
		n.dir.begin()
	} else if of := n.fs.openFile(n.ino()); of != nil {
		// A file this mount is writing: its view is ahead of the
		// manager's until the next flush.
		if a, ok := of.f.LocalAttr(); ok {
			n.fs.fillAttr(&out.Attr, a)
			return 0
		}
	} else {
		// The link count after an unlink of another of its names, which
		// may still be queued (see unlinker).
		n.fs.waitRemoval(n.ino())
	}
	a, err := n.fs.c.GetAttr(ctx, n.ino())
	if dir {
		if err != nil {
			n.dir.end(nil)
		} else {
			n.dir.end(&a)
		}
	}
	if err != nil {
		return n.fs.errno(err, "getattr", n.ino(), "")
	}
	n.remember(a)
	n.fs.fillAttr(&out.Attr, a)
	return 0
}

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) syscall.Errno {
	if n.fs.o.ReadOnly {
		return syscall.EROFS
	}
	done := func(*client.Attr) {}
	if n.isDir() {
		// A directory remembers the attributes the reply reported.
		done = n.changing()
	}
	a, errno := n.setattr(mutating(ctx), f, in)
	if errno != 0 {
		done(nil)
		return errno
	}
	done(&a)
	n.remember(a)
	n.fs.fillAttr(&out.Attr, a)
	return 0
}

// setattr applies in and returns the attributes after it.
func (n *node) setattr(ctx context.Context, f gofs.FileHandle, in *gofuse.SetAttrIn) (client.Attr, syscall.Errno) {
	ino := n.ino()
	// An open file's buffered writes and size live in its client.File:
	// truncate through it, and tell it about a new mtime, so that a
	// later commit of data written before cannot move the mtime a
	// caller just set (commits set the modification time; they leave
	// the access time alone).
	var of *openFile
	if h, ok := f.(*handle); ok {
		of = h.of
	} else if of = n.fs.pin(ino); of != nil {
		defer n.fs.release(ctx, of)
	}
	var s client.SetAttr
	changed := false
	if m, ok := in.GetMode(); ok {
		s.Mode, changed = &m, true
	}
	if uid, ok := in.GetUID(); ok {
		s.UID, changed = &uid, true
	}
	if gid, ok := in.GetGID(); ok {
		s.GID, changed = &gid, true
	}
	if at, ok := in.GetATime(); ok {
		s.Atime, changed = &at, true
	}
	if mt, ok := in.GetMTime(); ok {
		s.Mtime, changed = &mt, true
	}
	if size, ok := in.GetSize(); ok {
		if of != nil {
			if err := of.f.Truncate(ctx, int64(size)); err != nil {
				return client.Attr{}, n.fs.errno(err, "truncate", ino, "")
			}
		} else {
			s.Size, changed = &size, true
		}
	}
	if of != nil && s.Mtime != nil {
		if err := of.f.SetMtime(ctx, *s.Mtime); err != nil {
			return client.Attr{}, n.fs.errno(err, "utimens", ino, "")
		}
	}
	// On a file with unflushed writes the changes go with its data, at
	// its next flush (client.File.DeferAttr): tar sets the times, owner
	// and mode of every file it writes before closing it, and these cost
	// no round trip. The kernel has checked the caller may make them.
	if of != nil && changed && of.f.DeferAttr(s) {
		return of.f.Attr(), 0
	}
	var a client.Attr
	var err error
	if changed {
		a, err = n.fs.c.SetAttr(ctx, ino, s)
	} else {
		a, err = n.fs.c.GetAttr(ctx, ino)
	}
	if err != nil {
		return client.Attr{}, n.fs.errno(err, "setattr", ino, "")
	}
	return a, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *gofuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if n.fs.o.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	ctx = mutating(ctx)
	uid, gid, _ := n.owner(ctx)
	if mode&syscall.S_IFMT == 0 {
		mode |= syscall.S_IFREG
	}
	n.fs.unlinks.waitName(n.ino(), name)
	done := n.changing()
	e, err := n.fs.c.Create(ctx, n.ino(), name, client.CreateOptions{
		Mode: mode, UID: uid, GID: gid, Exclusive: flags&syscall.O_EXCL != 0,
		// Opened at once: a new file's first write-out needs no
		// allocation round trip. An unused one costs nothing lasting.
		Allocate: flags&syscall.O_ACCMODE != syscall.O_RDONLY,
	})
	done(e.Parent)
	if err != nil {
		return nil, nil, 0, n.fs.errno(err, "create", n.ino(), name)
	}
	if e.Mode&syscall.S_IFMT != syscall.S_IFREG {
		// Create without O_EXCL found something that is not a file.
		if e.IsDir() {
			return nil, nil, 0, syscall.EISDIR
		}
		return nil, nil, 0, syscall.EEXIST
	}
	h, errno := n.fs.openCreated(ctx, e, flags)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return n.child(ctx, name, e.Attr, out), h, 0, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if n.fs.o.ReadOnly && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	h, errno := n.fs.open(lookup(ctx), n.ino(), flags, true)
	if errno != 0 {
		return nil, 0, errno
	}
	// No FOPEN_KEEP_CACHE: the kernel drops this inode's cached pages
	// on every open, so an open sees what other mounts closed.
	return h, 0, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.fs.o.ReadOnly {
		return nil, syscall.EROFS
	}
	ctx = mutating(ctx)
	uid, gid, sgid := n.owner(ctx)
	n.fs.unlinks.waitName(n.ino(), name)
	done := n.changing()
	e, err := n.fs.c.Mkdir(ctx, n.ino(), name, mode&0o7777|sgid, uid, gid)
	done(e.Parent) // with the parent's new nlink
	if err != nil {
		return nil, n.fs.errno(err, "mkdir", n.ino(), name)
	}
	ch := n.child(ctx, name, e.Attr, out)
	if cn := nodeOf(ch); cn != nil && e.Parent != nil {
		// Made empty by this call (not found by a retry): see newDir.
		cn.fresh.start(n.fs.o.NegativeTimeout / 2)
	}
	return ch, 0
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.fs.o.ReadOnly {
		return nil, syscall.EROFS
	}
	ctx = mutating(ctx)
	uid, gid, _ := n.owner(ctx)
	if mode&syscall.S_IFMT == 0 {
		mode |= syscall.S_IFREG
	}
	n.fs.unlinks.waitName(n.ino(), name)
	done := n.changing()
	e, err := n.fs.c.Create(ctx, n.ino(), name, client.CreateOptions{
		Mode: mode, UID: uid, GID: gid, Rdev: dev, Exclusive: true,
	})
	done(e.Parent)
	if err != nil {
		return nil, n.fs.errno(err, "mknod", n.ino(), name)
	}
	return n.child(ctx, name, e.Attr, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.fs.o.ReadOnly {
		return nil, syscall.EROFS
	}
	ctx = mutating(ctx)
	uid, gid, _ := n.owner(ctx)
	n.fs.unlinks.waitName(n.ino(), name)
	done := n.changing()
	e, err := n.fs.c.Symlink(ctx, n.ino(), name, target, uid, gid)
	done(e.Parent)
	if err != nil {
		return nil, n.fs.errno(err, "symlink", n.ino(), name)
	}
	return n.child(ctx, name, e.Attr, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if t := n.target.Load(); t != nil {
		return []byte(*t), 0
	}
	a, err := n.fs.c.GetAttr(lookup(ctx), n.ino())
	if err != nil {
		return nil, n.fs.errno(err, "readlink", n.ino(), "")
	}
	if a.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	n.remember(a)
	return []byte(a.Target), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.fs.o.ReadOnly {
		return nil, syscall.EROFS
	}
	ctx = mutating(ctx)
	ino := client.Ino(target.EmbeddedInode().StableAttr().Ino)
	n.fs.unlinks.waitName(n.ino(), name)
	done := n.changing()
	e, err := n.fs.c.Link(ctx, ino, n.ino(), name)
	done(e.Parent)
	if err != nil {
		return nil, n.fs.errno(err, "link", n.ino(), name)
	}
	if of := n.fs.openFile(ino); of != nil {
		of.f.StaleAttr() // its link count changed
	}
	return n.child(ctx, name, e.Attr, out), 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.fs.o.ReadOnly {
		return syscall.EROFS
	}
	// The directory removed forgets its attributes (an open descriptor
	// may still fstat it).
	gone := nodeOf(n.GetChild(name))
	if gone != nil {
		n.fs.unlinks.waitDir(gone.ino())
		gone.dir.begin()
	} else {
		n.fs.unlinks.waitAll()
	}
	done := n.changing()
	r, err := n.fs.c.Rmdir(mutating(ctx), n.ino(), name)
	if gone != nil {
		gone.dir.end(nil)
	}
	done(r.Parent) // with the parent's new nlink
	if err != nil {
		return n.fs.errno(err, "rmdir", n.ino(), name)
	}
	return 0
}

// pinChild pins the open file behind name in n, if this mount has it
// open: the caller then removes the name with keepOpen, and the inode
// lives until its last handle is released. If it is not open, opens of
// it wait until the caller calls the returned function, once the
// manager has answered (see fileSystem.removing).
func (n *node) pinChild(name string) (*openFile, func()) {
	ch := n.GetChild(name)
	if ch == nil {
		// Not in go-fuse's tree, so the kernel has no dentry for it,
		// so nothing here has it open, or can open it without a lookup.
		return nil, func() {}
	}
	return n.fs.pinOrHold(client.Ino(ch.StableAttr().Ino))
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.fs.o.ReadOnly {
		return syscall.EROFS
	}
	ctx = mutating(ctx)
	n.fs.unlinks.waitName(n.ino(), name)
	pinned, unhold := n.pinChild(name)
	if pinned == nil && n.fs.unlinks.enqueue(n, name, unhold) {
		return 0 // see unlinker
	}
	done := n.changing()
	r, err := n.fs.c.Unlink(ctx, n.ino(), name, pinned != nil)
	unhold()
	done(r.Parent)
	n.fs.unlinks.settled(err)
	n.fs.settleRemoved(ctx, pinned, r.Ino, err == nil)
	if err != nil {
		return n.fs.errno(err, "unlink", n.ino(), name)
	}
	return 0
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if n.fs.o.ReadOnly {
		return syscall.EROFS
	}
	ctx = mutating(ctx)
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	n.fs.unlinks.waitName(n.ino(), name)
	n.fs.unlinks.waitName(np.ino(), newName)
	var pinned *openFile
	unhold := func() {}
	if flags&renameExchange == 0 {
		pinned, unhold = np.pinChild(newName)
	}
	np.fresh.added(newName)
	n.fresh.added(name) // an exchange leaves the other entry here
	// Both parents remember the attributes the reply reported. A
	// directory that moves (or is exchanged) gets a new ctime, which the
	// reply does not report: it forgets what it remembered.
	doneOld := n.changing()
	var doneNew func(*client.Attr)
	if np != n {
		doneNew = np.changing()
	}
	var moved []*node
	for _, ch := range []*node{nodeOf(n.GetChild(name)), nodeOf(np.GetChild(newName))} {
		if ch != nil {
			ch.dir.begin()
			moved = append(moved, ch)
		}
	}
	r, err := n.fs.c.Rename(ctx, n.ino(), name, np.ino(), newName, flags, pinned != nil)
	unhold()
	for _, ch := range moved {
		ch.dir.end(nil)
	}
	doneOld(r.OldParent)
	if doneNew != nil {
		doneNew(r.NewParent)
	}
	n.fs.settleRemoved(ctx, pinned, r.Replaced, err == nil)
	if err != nil {
		return n.fs.errno(err, "rename", n.ino(), name)
	}
	return 0
}

// renameExchange is RENAME_EXCHANGE from renameat2(2).
const renameExchange = 1 << 1

func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	st, err := n.fs.c.StatFS(ctx)
	if err != nil {
		return n.fs.errno(err, "statfs", n.ino(), "")
	}
	const bsize = 4096
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = st.CapacityBytes / bsize
	out.Bfree = st.FreeBytes / bsize
	out.Bavail = st.FreeBytes / bsize
	// Inodes are not a limited resource in the manager; report a large
	// free count so tools that check it (df -i, installers) are happy.
	out.Files = st.Files + 1<<32
	out.Ffree = 1 << 32
	out.NameLen = 255
	if st.NameMax > 0 {
		out.NameLen = st.NameMax
	}
	return 0
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{n: n}, 0, 0
}

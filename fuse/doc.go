// Package fuse mounts a shoal cluster as a directory: a go-fuse v2 node
// tree over the Go client (package client). Mount it with Mount; the
// `shoal mount` command is a thin wrapper.
//
// # Inodes
//
// A node's inode number (gofs.StableAttr.Ino, and st_ino as users see
// it) is the manager's inode number; the root is client.RootIno. The
// manager never reuses a number, so the generation is constant (1).
// One node type serves directories, files, symlinks and special files,
// as go-fuse's loopback does. Nodes hold no attributes of their own
// beyond the mode and group a new child inherits (set-group-ID
// directories), a symlink's target (immutable) and a directory's
// recent attributes (below): every Lookup, and every Getattr of a
// file, asks the manager, and the kernel caches the answers for the
// timeouts below. A directory listing is one ReadDirPlus call, whose
// attributes answer the kernel's READDIRPLUS lookups.
//
// # Directory attributes after a change
//
// The manager's reply to a create, mkdir, mknod, symlink, link, unlink,
// rmdir or rename carries the parent directories' attributes after the
// change (the new mtime, ctime and nlink: what a GetAttr right after
// would return). A directory node remembers them, and those of its last
// setattr or manager-answered getattr, with the time they arrived, and
// answers the kernel's next GETATTR of the directory from them while
// they are younger than Options.AttrTimeout, telling the kernel to keep
// them only for what remains of it. That GETATTR comes after every
// create and unlink: the kernel drops the parent's cached attributes
// when its contents change and, with default_permissions, needs them
// again for the permission check of the next create or unlink. So tar
// -x and rm -r cost one manager round trip less per file.
//
// The staleness bound is the kernel's own: attributes are used no
// longer than AttrTimeout after the manager produced them. Every change
// to a directory made through this mount replaces or drops what it
// remembers (calls that overlap on one directory drop it, as their
// replies may arrive out of order); a change made by another mount is
// seen here within AttrTimeout, as it was when the kernel cached the
// attributes itself. See dirattr.go.
//
// # Kernel caches and consistency between mounts
//
// Attributes, entries and negative entries are cached by the kernel for
// Options.AttrTimeout, EntryTimeout and NegativeTimeout, one second by
// default (as libfuse), so a rename, delete or create made by another
// mount is seen here within a second. One exception: in a directory this
// mount has just made, it answers the LOOKUP of a name it did not make
// itself "no such entry" for NegativeTimeout/2 (tar looks up every file
// it is about to create), so a name another mount makes there is seen
// within 1.5 x NegativeTimeout of the mkdir. See newdir.go. Files are opened without
// FOPEN_KEEP_CACHE, so every open drops the inode's cached pages; and
// close(2) (FLUSH) commits the data a writer buffered before it
// returns. Together that is close-to-open consistency: what one mount
// has closed or fsynced, another reads on its next open, once its
// cached attributes (the size) have expired, which is immediate for a
// file it has not looked at within the attribute timeout.
//
// Permissions are the kernel's (default_permissions): it checks modes
// and owners as for a local disk, applies the umask before a mode
// reaches us, and never sends ACCESS. AllowOther is needed for other
// users to enter the mount at all.
//
// # Open files
//
// All handles of one inode in a mount share one client.File (openFile),
// so what one handle wrote and the client still buffers, another handle
// reads, and the size the kernel sees includes it. A file made by CREATE
// is opened from the attributes the create returned (an empty file has
// no layout to fetch), so create-and-open is one manager call. Setting
// the mtime of an open file (utimens) tells its client.File the time to
// commit with (File.SetMtime) instead of syncing it first. Times, owner
// and mode set on a file with unflushed writes go with its data, at its
// next flush (client.File.DeferAttr): tar sets them on every file it
// writes, before closing it. Until then this mount answers GETATTR for
// the file from its own view (client.File.LocalAttr), and other mounts
// see the old values, as they see the old data. The client buffers
// writes (within its WriteBuffer budget); Flush (every close(2)) commits
// them (client.File.Flush: replicated, visible to other mounts) and
// Fsync also makes them durable on disk (client.File.Sync); Fsyncdir
// fsyncs the manager's log. The last Release closes the client.File.
// O_APPEND writes go at the client's idea of the size, not the
// kernel's cached one. mmap works through the page cache (no
// DIRECT_IO). Unlinking or renaming over a file open here passes
// keepOpen to the manager, which keeps the inode until the last handle
// is released; then the mount calls ReleaseInode.
//
// Extended attributes are not stored. The mount answers every xattr
// request (get, list, set, remove) with ENOSYS (go-fuse's DisableXAttrs),
// which makes the kernel remember that the filesystem has none and stop
// sending them: otherwise it would ask for security.capability before
// every write. Programs get EOPNOTSUPP, which cp -a, tar, rsync -a and
// ls treat as a filesystem without xattr support.
//
// File locks (flock, fcntl) are left to the kernel, which keeps them per
// mount: they exclude processes using the same mount, not other mounts.
//
// # Errors, interrupts and timeouts
//
// Errors become errnos in one place, errno in errno.go. The op's ctx
// is passed to the client. For reads of data and listings that ctx is
// cancelled when the kernel interrupts the request, and the caller gets
// EINTR (Ctrl-C ends a long cat at once). Operations that change state
// (writes, flush, fsync, create, unlink, rename, setattr, ...) run with
// the interrupt detached (context.WithoutCancel): an EINTR after the
// manager applied a change would lie to the caller, and a Go program's
// close(2) must not fail because the runtime preempted it with SIGURG.
// Short metadata calls (lookup, getattr, open, readlink) are detached too:
// few callers of open(2) or stat(2) expect EINTR. Every call is still
// bounded by the client's OpTimeout, after which it fails with EIO, so
// no operation on the mount hangs when the manager or chunkservers are
// down; it works again when they come back, without a remount.
//
// # Unmounting
//
// Server.Unmount commits open files, unmounts, and, if the mount is
// busy, detaches it lazily, waits up to Options.UnmountTimeout for its
// users to let go, then aborts the FUSE connection; it returns when the
// serve loop has ended, so no mount is left behind that answers
// "transport endpoint is not connected".
//
// # Deadlocks
//
// Node methods never call into the kernel on this mount (no Notify*
// calls, no file I/O under the mountpoint): the kernel may hold locks
// on the inodes involved while it waits for our answer. Tests that use
// the mount from the process that serves it must not touch mmapped
// pages of the mount from Go code (a page fault is not a syscall, and a
// stop-the-world GC would wait for it while the serve loop is stopped),
// so they do that in a subprocess; see also go-fuse's fs package
// documentation on fork and exec.
package fuse

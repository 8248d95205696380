package fuse

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/shoalfs/shoal/client"
)

// dirHandle is one opendir(3) of a directory. It lists the directory
// with one ReadDirPlus call when the first entry is read (and again on
// rewinddir), and answers the kernel's READDIRPLUS lookups from that
// listing, so `ls -l` costs one RPC, not one per entry.
type dirHandle struct {
	n *node

	mu      sync.Mutex // guards the fields below; go-fuse also serialises calls per handle
	loaded  bool
	entries []gofuse.DirEntry      // ".", "..", then the listing
	attrs   map[string]client.Attr // the listing's attributes, by name
	pos     int                    // index of the next entry
}

var (
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileLookuper     = (*dirHandle)(nil)
	_ gofs.FileFsyncdirer   = (*dirHandle)(nil)
)

func (d *dirHandle) load(ctx context.Context) syscall.Errno {
	ino := d.n.ino()
	d.n.fs.unlinks.waitDir(ino)
	list, err := d.n.fs.c.ReadDirPlus(ctx, ino)
	if err != nil {
		return d.n.fs.errno(err, "readdir", ino, "")
	}
	parent := uint64(ino)
	if _, p := d.n.Parent(); p != nil {
		parent = p.StableAttr().Ino
	}
	d.entries = append(d.entries[:0],
		gofuse.DirEntry{Name: ".", Ino: uint64(ino), Mode: syscall.S_IFDIR},
		gofuse.DirEntry{Name: "..", Ino: parent, Mode: syscall.S_IFDIR})
	d.attrs = make(map[string]client.Attr, len(list))
	for _, e := range list {
		d.entries = append(d.entries, gofuse.DirEntry{Name: e.Name, Ino: uint64(e.Ino), Mode: e.Mode & syscall.S_IFMT})
		if e.Attr != nil {
			d.attrs[e.Name] = *e.Attr
		}
	}
	d.loaded = true
	return 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded {
		if errno := d.load(ctx); errno != 0 {
			return nil, errno
		}
	}
	if d.pos >= len(d.entries) {
		return nil, 0
	}
	e := d.entries[d.pos]
	d.pos++
	e.Off = uint64(d.pos)
	return &e, 0
}

// Seekdir moves to an offset a previous Readdirent returned; offset 0
// (rewinddir) lists the directory afresh.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		d.loaded = false
		d.pos = 0
		return 0
	}
	if !d.loaded {
		if errno := d.load(ctx); errno != 0 {
			return errno
		}
	}
	if off > uint64(len(d.entries)) {
		return syscall.EINVAL
	}
	d.pos = int(off)
	return 0
}

// Lookup answers READDIRPLUS for name from the listing's attributes.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.mu.Lock()
	a, ok := d.attrs[name]
	d.mu.Unlock()
	if !ok || d.n.fs.unlinks.pending(d.n.ino(), name) {
		return d.n.Lookup(ctx, name, out)
	}
	return d.n.child(ctx, name, a, out), 0
}

// Fsyncdir makes the namespace changes acknowledged so far durable on
// the manager's disk (they survive its process at once, its machine
// after its next background sync).
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if err := d.n.fs.unlinks.flushDir(d.n.ino()); err != nil {
		return d.n.fs.errno(err, "fsyncdir", d.n.ino(), "")
	}
	if err := d.n.fs.c.SyncMetadata(mutating(ctx)); err != nil {
		return d.n.fs.errno(err, "fsyncdir", d.n.ino(), "")
	}
	return 0
}

package fuse

import (
	"sync"
	"time"

	"github.com/shoalfs/shoal/client"
)

// dirAttrs is what a mount remembers of a directory's attributes: those
// the manager reported in the reply to the last change made in the
// directory through this mount (a create, unlink, rename, link, mkdir,
// rmdir, symlink, mknod in it; a setattr on it), or to its last GETATTR,
// with the time they were received.
//
// Why: after every create or unlink the kernel drops the directory's
// cached attributes (fs/fuse's fuse_dir_changed) and, with
// default_permissions, fetches them again for the permission check of the
// next create or unlink in it. Answering that GETATTR from the reply of
// the change that just happened saves one manager round trip per file for
// tar -x and rm -r.
//
// Staleness: a GETATTR is answered from here only while the attributes
// are younger than AttrTimeout, and with a validity of what remains of
// it, so the kernel holds them no longer than AttrTimeout after the
// manager produced them: the same bound the kernel's own attribute cache
// gives. Changes made through this mount are never missed, because every
// call that changes the directory here replaces or drops what is
// remembered; a change made by another mount is seen once AttrTimeout
// has passed, as without this cache. That keeps close-to-open
// consistency (which concerns file data and sizes, not directories'
// times) and permission checks (the mode, owner and group of a directory
// changed by another mount are seen within AttrTimeout, as before).
//
// Calls that overlap on one directory (two creates in it at once, or a
// GETATTR during a create) may get their replies in any order, so none
// of their replies is kept: the next GETATTR asks the manager.
type dirAttrs struct {
	mu       sync.Mutex
	a        client.Attr
	at       time.Time // when a was received; zero: nothing remembered
	inflight int       // calls between begin and end
	mixed    bool      // calls overlapped since inflight was last 0
	// queued counts the removals among inflight that the unlinker has
	// queued (beginQueued): with only those in flight, get answers with
	// a's mode, owner and size, and the mtime and ctime they will set.
	queued int
}

// begin is called before a call whose reply may report the directory's
// attributes or changes them.
func (d *dirAttrs) begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inflight++
	if d.inflight > 1 {
		d.mixed = true
	}
}

// beginQueued is called when the unlinker queues the removal of a name
// in the directory, at now. Queued removals overlap each other without
// making the replies useless: the unlinker sends them in order, and the
// last reply for the directory describes it after all of them. Any other
// call overlapping them does.
func (d *dirAttrs) beginQueued(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight > d.queued {
		d.mixed = true
	}
	d.inflight++
	d.queued++
	if !d.at.IsZero() {
		d.a.Mtime, d.a.Ctime = later(d.a.Mtime, now), later(d.a.Ctime, now)
	}
}

// endQueued is end for a removal beginQueued announced.
func (d *dirAttrs) endQueued(a *client.Attr) {
	d.mu.Lock()
	d.queued--
	if a != nil && d.queued > 0 {
		// Removals queued after this one have moved the times on.
		b := *a
		b.Mtime, b.Ctime = later(b.Mtime, d.a.Mtime), later(b.Ctime, d.a.Ctime)
		a = &b
	}
	d.mu.Unlock()
	d.end(a)
}

// end is called after the call begin announced, with the directory's
// attributes its reply reported, or nil if it reported none (an error, a
// retry that found an earlier attempt's result, or a change to the
// directory that the reply does not describe): then nothing is
// remembered.
func (d *dirAttrs) end(a *client.Attr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inflight--
	if a == nil || d.mixed {
		d.at = time.Time{}
	} else {
		d.a, d.at = *a, time.Now()
	}
	if d.inflight == 0 {
		d.mixed = false
	}
}

// get returns the remembered attributes and how much longer they may be
// used, if they are younger than ttl and no call on the directory is
// running but queued removals.
func (d *dirAttrs) get(ttl time.Duration) (client.Attr, time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at.IsZero() || d.inflight > d.queued || d.mixed {
		return client.Attr{}, 0, false
	}
	left := ttl - time.Since(d.at)
	if left <= 0 {
		return client.Attr{}, 0, false
	}
	return d.a, left, true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

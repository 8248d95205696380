package fuse

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/shoalfs/shoal/client"
)

// unlinker removes files in the background.
//
// Why: rm -r removes one name after another and the kernel waits for
// each UNLINK, so with a manager round trip in every one a mount removes
// a few thousand files a second where a local disk removes tens of
// thousands. An unlink of a file that is not open here therefore returns
// once it is queued, and one worker sends the queue to the manager in
// batches (UnlinkBatch: one transaction for up to client.MaxUnlinkBatch
// names; what queues while a batch is out goes in the next). CephFS does
// the same for its asynchronous unlinks.
//
// What this mount sees stays exact:
//   - every call that names a queued name again (lookup, create, mkdir,
//     mknod, symlink, link, rename, unlink) first waits until the manager
//     has removed it (waitName);
//   - listing a directory, rmdir of it, fsync on it and a GETATTR of it
//     that cannot be answered locally wait for every removal queued in it
//     (waitDir); a GETATTR that can is answered with the mtime and ctime
//     the removals will set, as this mount's clock has them (dirAttrs);
//   - opens of a queued file's inode (through another hard link) wait
//     for its removal (fileSystem.removing), as for any unlink;
//   - unmount waits for the queue.
//
// What changes: a successful unlink means "queued". Other mounts see the
// name for one more batch round trip. It is durable once fsync on the
// directory returns, as on a local disk, where an unlink is durable only
// after fsync of its directory. The manager can refuse a queued removal
// only if someone else changed the name meanwhile (it was there, and not
// a directory, when queued) or if it cannot be reached: then the name
// stays, nothing is lost, and the failure shows: it is logged, the next
// fsync of the directory returns it, rmdir of the directory fails with
// ENOTEMPTY, and unlinks wait for the manager again until one succeeds.
// So a manager that dies costs at most one queue (maxQueued) of unlinks
// that reported success and did not happen. Options.SyncUnlink (shoal
// mount --sync-unlink) turns all this off.
type unlinker struct {
	fs *fileSystem

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a removal finishes
	queue   []*queuedUnlink
	byName  map[dirName]*queuedUnlink // queued or being sent
	byDir   map[client.Ino]*dirQueue
	failed  map[client.Ino]error // a failed removal per directory, until its next fsync
	waiting bool                 // a removal failed: unlink waits for the manager until one succeeds
	closed  bool

	kick chan struct{} // wakes the worker; capacity 1
	done chan struct{} // closed when the worker has ended
}

// maxQueued bounds the removals queued or being sent: enough to cover a
// batch's round trip at full speed, few enough to bound what a manager
// that dies can leave undone after unlink said yes.
const maxQueued = 64

type dirName struct {
	dir  client.Ino
	name string
}

type queuedUnlink struct {
	dir    *node
	name   string
	unhold func() // lets opens of the inode go on (pinOrHold)
	done   chan struct{}
}

// dirQueue counts the removals queued in one directory; empty is closed
// when the count drops to 0.
type dirQueue struct {
	n     int
	empty chan struct{}
}

// newUnlinker starts the worker; close stops it.
func newUnlinker(fs *fileSystem) *unlinker {
	u := &unlinker{
		fs:     fs,
		byName: make(map[dirName]*queuedUnlink),
		byDir:  make(map[client.Ino]*dirQueue),
		failed: make(map[client.Ino]error),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	u.cond = sync.NewCond(&u.mu)
	go u.run()
	return u
}

// enqueue queues the removal of name in dir, whose inode is held by
// unhold, and reports whether it did; if it did not, the caller removes
// it itself and calls unhold. It waits while the queue is full.
func (u *unlinker) enqueue(dir *node, name string, unhold func()) bool {
	if u.fs.o.SyncUnlink {
		return false
	}
	ch := dir.GetChild(name)
	if ch == nil || ch.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return false // unknown here, or not a file: let the manager answer
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for !u.closed && !u.waiting && len(u.byName) >= maxQueued {
		u.cond.Wait()
	}
	key := dirName{dir.ino(), name}
	if u.closed || u.waiting || u.byName[key] != nil {
		return false
	}
	q := &queuedUnlink{dir: dir, name: name, unhold: unhold, done: make(chan struct{})}
	u.queue = append(u.queue, q)
	u.byName[key] = q
	dq := u.byDir[key.dir]
	if dq == nil {
		dq = &dirQueue{empty: make(chan struct{})}
		u.byDir[key.dir] = dq
	}
	dq.n++
	dir.dir.beginQueued(time.Now())
	select {
	case u.kick <- struct{}{}:
	default:
	}
	return true
}

// settled records the outcome of an unlink the caller made itself: a
// success lets unlinks queue again.
func (u *unlinker) settled(err error) {
	if err != nil {
		return
	}
	u.mu.Lock()
	u.waiting = false
	u.mu.Unlock()
}

// waitName waits until a queued removal of name in dir, if any, is done.
func (u *unlinker) waitName(dir client.Ino, name string) {
	u.mu.Lock()
	q := u.byName[dirName{dir, name}]
	u.mu.Unlock()
	if q != nil {
		<-q.done
	}
}

// pending reports whether the removal of name in dir is queued.
func (u *unlinker) pending(dir client.Ino, name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.byName[dirName{dir, name}] != nil
}

// waitAll waits until the removals queued so far are done.
func (u *unlinker) waitAll() {
	u.mu.Lock()
	var qs []*dirQueue
	for _, dq := range u.byDir {
		qs = append(qs, dq)
	}
	u.mu.Unlock()
	for _, dq := range qs {
		<-dq.empty
	}
}

// waitDir waits until the removals queued in dir so far are done.
func (u *unlinker) waitDir(dir client.Ino) {
	u.mu.Lock()
	dq := u.byDir[dir]
	u.mu.Unlock()
	if dq != nil {
		<-dq.empty
	}
}

// flushDir waits for the removals queued in dir and returns the first
// one that failed since the last flushDir, if any.
func (u *unlinker) flushDir(dir client.Ino) error {
	u.waitDir(dir)
	u.mu.Lock()
	defer u.mu.Unlock()
	err := u.failed[dir]
	delete(u.failed, dir)
	return err
}

// close sends what is queued, and stops the worker.
func (u *unlinker) close() {
	u.mu.Lock()
	u.closed = true
	u.cond.Broadcast()
	u.mu.Unlock()
	select {
	case u.kick <- struct{}{}:
	default:
	}
	<-u.done
}

func (u *unlinker) run() {
	defer close(u.done)
	for range u.kick {
		for {
			batch, closed := u.take()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			u.send(batch)
		}
	}
}

// take returns up to a batch of queued removals, and whether the
// unlinker is closed.
func (u *unlinker) take() ([]*queuedUnlink, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := min(len(u.queue), client.MaxUnlinkBatch)
	batch := u.queue[:n:n]
	u.queue = u.queue[n:]
	return batch, u.closed
}

// send removes batch at the manager and finishes each removal. Its
// context is the client's own: it bounds the call by OpTimeout, and an
// unmount waits for it rather than lose the removals.
func (u *unlinker) send(batch []*queuedUnlink) {
	ops := make([]client.UnlinkEntry, len(batch))
	for i, q := range batch {
		ops[i] = client.UnlinkEntry{Parent: q.dir.ino(), Name: q.name}
	}
	rs, errs, err := u.fs.c.UnlinkBatch(context.Background(), ops)
	outcome := make([]error, len(batch))
	failed := false
	for i, q := range batch {
		e := err
		if err == nil {
			e = errs[i]
		}
		if errors.Is(e, syscall.ENOENT) {
			e = nil // gone already: removed by someone else
		}
		if e != nil {
			failed = true
			u.fs.log.WithFields(logrus.Fields{"op": "unlink", "ino": q.dir.ino(), "name": q.name}).
				WithError(e).Warn("queued unlink failed; the name stays")
		}
		outcome[i] = e
	}
	u.mu.Lock()
	u.waiting = failed
	u.mu.Unlock()
	for i, q := range batch {
		var parent *client.Attr
		if err == nil {
			parent = rs[i].Parent
		}
		q.dir.dir.endQueued(parent)
		q.unhold()
		u.finish(q, outcome[i])
	}
}

func (u *unlinker) finish(q *queuedUnlink, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key := dirName{q.dir.ino(), q.name}
	delete(u.byName, key)
	if err != nil && u.failed[key.dir] == nil {
		u.failed[key.dir] = err
	}
	if dq := u.byDir[key.dir]; dq != nil {
		if dq.n--; dq.n == 0 {
			delete(u.byDir, key.dir)
			close(dq.empty)
		}
	}
	close(q.done)
	u.cond.Broadcast()
}

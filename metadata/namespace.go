package metadata

// Namespace operations. Each mutation is one Badger transaction
// (store.update, which retries conflicts). Creating or removing an entry
// stamps the parent directory's mtime/ctime with a blind write to its m|
// key instead of rewriting its inode, so concurrent creates in one
// directory do not conflict; only operations that change a directory's own
// record (mkdir, rmdir, rename of a directory: its nlink) read-modify-write
// it. rmdir reads the stamp key of the directory it removes, so it
// conflicts with a concurrent create inside it.

import (
	"context"
	"errors"
	"fmt"
)

// Extra file type bits accepted by Create (special files).
const (
	modeFIFO   uint32 = 0o010000
	modeChar   uint32 = 0o020000
	modeBlock  uint32 = 0o060000
	modeSocket uint32 = 0o140000
)

// ReadDir limits.
const (
	defaultReadDirLimit = 1024
	maxReadDirLimit     = 16384
)

// removal is what a transaction removed, applied to the counters and the
// soft state after it commits.
type removal struct {
	inodes, files int64
	garbage       []ChunkID
}

func (r *removal) reset() { *r = removal{} }

// apply updates counters and queues the deletion of every replica of the
// garbage chunks.
func (m *Manager) apply(r removal) {
	m.inodes.Add(-r.inodes)
	m.files.Add(-r.files)
	if len(r.garbage) == 0 {
		return
	}
	m.mu.Lock()
	m.cl.dropChunks(r.garbage)
	m.mu.Unlock()
}

// dirInode reads ino and checks that it is a directory.
func dirInode(t tx, ino Ino, op string) (Attr, error) {
	a, err := t.inode(ino)
	if err != nil {
		return a, fmt.Errorf("metadata: %s: directory %d: %w", op, ino, err)
	}
	if !a.IsDir() {
		return a, fmt.Errorf("metadata: %s: inode %d: %w", op, ino, ErrNotDir)
	}
	return a, nil
}

// Lookup returns the attributes of name in directory parent.
func (m *Manager) Lookup(ctx context.Context, parent Ino, name string) (Attr, error) {
	if err := validateName(name); err != nil {
		return Attr{}, err
	}
	var a Attr
	err := m.st.view(func(t tx) error {
		e, ok, err := t.dirent(parent, name)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := dirInode(t, parent, "lookup"); err != nil {
				return err
			}
			return notFound("metadata: lookup %q in %d", name, parent)
		}
		a, err = t.attr(e.Ino)
		return err
	})
	return a, err
}

// GetAttr returns the attributes of ino.
func (m *Manager) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	var a Attr
	err := m.st.view(func(t tx) (err error) {
		a, err = t.attr(ino)
		return err
	})
	if err != nil {
		return Attr{}, fmt.Errorf("metadata: getattr: %w", err)
	}
	return a, nil
}

// SetAttr changes the attributes of ino that args.Mask selects and returns
// the result. Setting the size of a regular file truncates or (sparsely)
// extends it: chunks wholly past the new size leave the layout and their
// replicas are queued for deletion; the chunk that straddles it keeps its
// replicas with its layout length trimmed. The ctime always moves to now,
// the mtime too when the size changes (unless the mask sets it).
func (m *Manager) SetAttr(ctx context.Context, ino Ino, args SetAttrArgs) (Attr, error) {
	if args.Mask&SetSize != 0 && args.Size > MaxFileSize {
		return Attr{}, fmt.Errorf("metadata: setattr %d: size %d over %d: %w", ino, args.Size, MaxFileSize, ErrInvalid)
	}
	var a Attr
	var rm removal
	err := m.st.update(ctx, func(t tx) error {
		rm.reset()
		var err error
		if a, err = t.attr(ino); err != nil {
			return err
		}
		now := m.now().UnixNano()
		if args.Mask&SetSize != 0 {
			switch {
			case a.IsDir():
				return fmt.Errorf("metadata: truncate directory %d: %w", ino, ErrIsDir)
			case !a.IsRegular():
				return fmt.Errorf("metadata: truncate inode %d of mode %o: %w", ino, a.Mode, ErrInvalid)
			}
			if rm.garbage, err = truncateLayout(t, a, args.Size); err != nil {
				return err
			}
			if args.Size != a.Size {
				a.Mtime = now
			}
			a.Size = args.Size
		}
		args.apply(&a) // after the size: an explicit mtime wins over the truncate's
		a.Ctime = now
		if a.IsDir() {
			// The record now carries the directory's effective times.
			if err := t.del(dirTimeKey(ino)); err != nil {
				return err
			}
		}
		return t.putInode(a)
	})
	if err != nil {
		return Attr{}, fmt.Errorf("metadata: setattr: %w", err)
	}
	m.apply(rm)
	return a, nil
}

// truncateLayout drops the layout entries of a wholly at or past size and
// trims the length of the one straddling it. It returns the chunks that
// left the layout.
func truncateLayout(t tx, a Attr, size uint64) ([]ChunkID, error) {
	cs := a.ChunkSize
	if cs == 0 {
		return nil, fmt.Errorf("metadata: inode %d has no chunk size: %w", a.Ino, ErrInvalid)
	}
	garbage, err := t.dropData(a.Ino, (size+cs-1)/cs)
	if err != nil || size%cs == 0 {
		return garbage, err
	}
	if size < cs {
		b, ok, err := t.inline(a.Ino)
		if err != nil {
			return nil, err
		}
		if ok && uint64(len(b)) > size {
			return garbage, t.set(inlineKey(a.Ino), b[:size])
		}
	}
	k := size / cs
	l, ok, err := t.layout(a.Ino, k)
	if err != nil || !ok || l.Length <= size-k*cs {
		return garbage, err
	}
	l.Length = size - k*cs
	return garbage, t.set(layoutKey(a.Ino, k), encodeLayout(l))
}

// checkCreateArgs validates args and fills in defaults.
func (m *Manager) checkCreateArgs(args *CreateArgs) error {
	if args.Mode&ModeType == 0 {
		args.Mode |= ModeRegular
	}
	switch args.Mode & ModeType {
	case ModeRegular:
		if args.ChunkSize == 0 {
			args.ChunkSize = uint64(m.cfg.ChunkSize)
		}
		if args.ChunkSize < MinChunkSize || args.ChunkSize > MaxChunkSize {
			return fmt.Errorf("metadata: chunk size %d out of range %d..%d: %w", args.ChunkSize, MinChunkSize, MaxChunkSize, ErrInvalid)
		}
	case ModeSymlink:
		if args.Target == "" || len(args.Target) > MaxSymlinkTarget {
			return fmt.Errorf("metadata: symlink target of %d bytes (1..%d): %w", len(args.Target), MaxSymlinkTarget, ErrInvalid)
		}
	case ModeDir, modeFIFO, modeChar, modeBlock, modeSocket:
	default:
		return fmt.Errorf("metadata: file type %o: %w", args.Mode&ModeType, ErrInvalid)
	}
	if !args.isRegular() {
		args.ChunkSize = 0
	}
	if args.Mode&ModeType != ModeSymlink {
		args.Target = ""
	}
	return nil
}

func (a CreateArgs) isRegular() bool { return a.Mode&ModeType == ModeRegular }

// CreateResult is what Create made or found.
type CreateResult struct {
	Attr    Attr // the inode name refers to
	Parent  Attr // the parent directory after the call, as GetAttr would return it
	Created bool // false: a non-exclusive create found an existing file
	// First is chunk 0's allocation, made when CreateArgs.Allocate asked
	// for it and Create made a regular file; nil if not asked, or if no
	// allocation could be made (safe mode, too few chunkservers), which
	// does not fail the create.
	First *Allocation
}

// touched returns the attributes a directory has after a transaction that
// read its record p (and wrote it back if it changed) and stamped it with
// touchDir(now): what t.attr returns once the transaction commits. It is
// computed rather than read back because reading the stamp key would put it
// in the transaction's read set, and concurrent creates in one directory
// would then conflict.
func touched(p Attr, now int64) Attr {
	p.Mtime, p.Ctime = now, now
	return p
}

// Create makes name in directory parent: a regular file, directory,
// symlink or special file, by args.Mode's type bits. When the name exists
// it fails with ErrExists, except that a non-exclusive create of a regular
// file over a regular file returns the existing file with Created false.
// With args.Allocate, a regular file it makes comes with chunk 0
// allocated (see AllocateChunk); an allocation never used expires after
// pendingTTL and leaves nothing behind.
func (m *Manager) Create(ctx context.Context, parent Ino, name string, args CreateArgs) (CreateResult, error) {
	if err := validateName(name); err != nil {
		return CreateResult{}, err
	}
	if err := m.checkCreateArgs(&args); err != nil {
		return CreateResult{}, err
	}
	var r CreateResult
	var ino Ino // drawn once, kept across conflict retries
	err := m.st.update(ctx, func(t tx) error {
		r = CreateResult{}
		p, err := dirInode(t, parent, "create")
		if err != nil {
			return err
		}
		e, ok, err := t.dirent(parent, name)
		if err != nil {
			return err
		}
		if ok {
			if !args.Exclusive && args.isRegular() && e.Mode&ModeType == ModeRegular {
				// Nothing is written, so reading the stamp adds no conflict.
				if r.Parent, err = t.attr(parent); err != nil {
					return err
				}
				r.Attr, err = t.attr(e.Ino)
				return err
			}
			return fmt.Errorf("metadata: create %q in %d: %w", name, parent, ErrExists)
		}
		if ino == 0 {
			if ino, err = m.st.nextIno(); err != nil {
				return err
			}
		}
		now := m.now().UnixNano()
		a := Attr{
			Ino: ino, Mode: args.Mode, Nlink: 1, UID: args.UID, GID: args.GID,
			Atime: now, Mtime: now, Ctime: now,
			Target: args.Target, ChunkSize: args.ChunkSize, Rdev: args.Rdev,
			Size: uint64(len(args.Target)), // a symlink's size is its target's length, as lstat(2) reports
		}
		if a.IsDir() {
			a.Nlink, a.Parent = 2, parent
			p.Nlink++
			if err := t.putInode(p); err != nil {
				return err
			}
		}
		if err := t.putInode(a); err != nil {
			return err
		}
		if err := t.putDirent(parent, name, dirent{Ino: ino, Mode: a.Mode & ModeType}); err != nil {
			return err
		}
		r = CreateResult{Attr: a, Parent: touched(p, now), Created: true}
		return t.touchDir(parent, now)
	})
	if err != nil {
		return CreateResult{}, err
	}
	if r.Created {
		m.inodes.Add(1)
		if r.Attr.IsRegular() {
			m.files.Add(1)
		}
	}
	if r.Created && r.Attr.IsRegular() && args.Allocate {
		al, err := m.allocateNew(r.Attr, 0, nil)
		if err != nil {
			// The writer allocates when it needs to, and fails then if
			// it still cannot.
			m.log.WithError(err).WithField("ino", r.Attr.Ino).Debug("metadata: no first chunk with the create")
		} else {
			r.First = &al
		}
	}
	return r, nil
}

// Link adds the hard link newName in newParent to ino, which must not be a
// directory (ErrIsDir). It returns ino's attributes and newParent's after
// the change.
func (m *Manager) Link(ctx context.Context, ino, newParent Ino, newName string) (a, parent Attr, err error) {
	if err := validateName(newName); err != nil {
		return Attr{}, Attr{}, err
	}
	err = m.st.update(ctx, func(t tx) error {
		var err error
		if a, err = t.inode(ino); err != nil {
			return fmt.Errorf("metadata: link: %w", err)
		}
		if a.IsDir() {
			return fmt.Errorf("metadata: link directory %d: %w", ino, ErrIsDir)
		}
		if a.Nlink == 0 {
			return notFound("metadata: link: inode %d has no links left", ino)
		}
		p, err := dirInode(t, newParent, "link")
		if err != nil {
			return err
		}
		if ok, err := t.has(direntKey(newParent, newName)); err != nil || ok {
			if err == nil {
				err = fmt.Errorf("metadata: link %q in %d: %w", newName, newParent, ErrExists)
			}
			return err
		}
		now := m.now().UnixNano()
		a.Nlink++
		a.Ctime = now
		if err := t.putInode(a); err != nil {
			return err
		}
		if err := t.putDirent(newParent, newName, dirent{Ino: ino, Mode: a.Mode & ModeType}); err != nil {
			return err
		}
		parent = touched(p, now)
		return t.touchDir(newParent, now)
	})
	if err != nil {
		return Attr{}, Attr{}, err
	}
	return a, parent, nil
}

// dropLink removes one link of the non-directory a. When it was the last,
// the inode goes with its data, or with keepOpen stays (with nlink 0, in
// the orphan list) until ReleaseInode.
func dropLink(t tx, a Attr, keepOpen bool, now int64, rm *removal) (removed bool, err error) {
	a.Nlink--
	a.Ctime = now
	switch {
	case a.Nlink > 0:
		return false, t.putInode(a)
	case keepOpen:
		if err := t.putInode(a); err != nil {
			return false, err
		}
		return false, t.set(orphanKey(a.Ino), nil)
	}
	garbage, err := t.removeInode(a)
	if err != nil {
		return false, err
	}
	rm.inodes++
	if a.IsRegular() {
		rm.files++
	}
	rm.garbage = append(rm.garbage, garbage...)
	return true, nil
}

// removeDir deletes the empty directory d, named in its parent p (a raw
// record, whose nlink drops). It fails with ErrNotEmpty if d has entries.
func removeDir(t tx, p *Attr, d Attr, rm *removal) error {
	// Reading d's stamp puts it in this transaction's read set: a create
	// in d that commits first makes this one conflict and see the entry.
	if _, _, err := t.stamp(d.Ino); err != nil {
		return err
	}
	empty := true
	err := t.scan(direntPrefix(d.Ino), nil, false, func(k, v []byte) error {
		empty = false
		return errStop
	})
	if err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("metadata: directory %d: %w", d.Ino, ErrNotEmpty)
	}
	if _, err := t.removeInode(d); err != nil {
		return err
	}
	p.Nlink--
	rm.inodes++
	return nil
}

// UnlinkResult is what Unlink did.
type UnlinkResult struct {
	Ino     Ino  // the inode that lost a link
	Removed bool // whether that inode is gone
	Parent  Attr // the parent directory after the call, as GetAttr would return it
}

// Unlink removes name from directory parent. With dir set it is rmdir: the
// target must be an empty directory (ErrNotDir, ErrNotEmpty); without, it
// must not be a directory (ErrIsDir). With keepOpen an inode that lost its
// last link stays until ReleaseInode.
func (m *Manager) Unlink(ctx context.Context, parent Ino, name string, dir, keepOpen bool) (UnlinkResult, error) {
	if err := validateName(name); err != nil {
		return UnlinkResult{}, err
	}
	var r UnlinkResult
	var rm removal
	err := m.st.update(ctx, func(t tx) error {
		rm.reset()
		var err error
		r, err = unlinkIn(t, parent, name, dir, keepOpen, m.now().UnixNano(), &rm)
		return err
	})
	if err != nil {
		return UnlinkResult{}, err
	}
	m.apply(rm)
	return r, nil
}

// UnlinkOp is one name for UnlinkFiles to remove.
type UnlinkOp struct {
	Parent   Ino
	Name     string
	KeepOpen bool
}

// MaxUnlinkBatch is the most names one UnlinkFiles call removes.
const MaxUnlinkBatch = 256

// UnlinkFiles removes several names that are not directories, as Unlink
// without dir would, in one transaction: one commit for them all. Each
// name succeeds or fails on its own: errs[i] is the domain error Unlink
// would have returned for ops[i] (nothing of that name changes), and
// results[i] is its result otherwise. Each result's Parent is the
// directory as it was right after that name went, so the last one for a
// directory describes it after the call. The returned error is for the
// call as a whole (storage, too many names); then nothing changed.
func (m *Manager) UnlinkFiles(ctx context.Context, ops []UnlinkOp) (results []UnlinkResult, errs []error, err error) {
	if len(ops) > MaxUnlinkBatch {
		return nil, nil, fmt.Errorf("metadata: unlink %d names at once, at most %d: %w", len(ops), MaxUnlinkBatch, ErrInvalid)
	}
	results, errs = make([]UnlinkResult, len(ops)), make([]error, len(ops))
	var rm removal
	err = m.st.update(ctx, func(t tx) error {
		rm.reset()
		now := m.now().UnixNano()
		for i, op := range ops {
			results[i], errs[i] = UnlinkResult{}, validateName(op.Name)
			if errs[i] != nil {
				continue
			}
			r, err := unlinkIn(t, op.Parent, op.Name, false, op.KeepOpen, now, &rm)
			var de *domainError
			switch {
			case errors.As(err, &de):
				// unlinkIn checks everything before it writes, so a
				// refused name left nothing behind in t.
				errs[i] = err
			case err != nil:
				return err
			default:
				results[i] = r
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	m.apply(rm)
	return results, errs, nil
}

// unlinkIn is Unlink inside transaction t. Every domain error it returns
// comes before its first write.
func unlinkIn(t tx, parent Ino, name string, dir, keepOpen bool, now int64, rm *removal) (UnlinkResult, error) {
	var r UnlinkResult
	p, err := dirInode(t, parent, "unlink")
	if err != nil {
		return r, err
	}
	e, ok, err := t.dirent(parent, name)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, notFound("metadata: unlink %q in %d", name, parent)
	}
	a, err := t.inode(e.Ino)
	if err != nil {
		return r, err
	}
	switch {
	case dir && !a.IsDir():
		return r, fmt.Errorf("metadata: rmdir %q in %d: %w", name, parent, ErrNotDir)
	case !dir && a.IsDir():
		return r, fmt.Errorf("metadata: unlink %q in %d: %w", name, parent, ErrIsDir)
	case dir:
		if err := removeDir(t, &p, a, rm); err != nil {
			return r, fmt.Errorf("metadata: rmdir %q in %d: %w", name, parent, err)
		}
		r.Removed = true
		if err := t.putInode(p); err != nil {
			return r, err
		}
	default:
		if r.Removed, err = dropLink(t, a, keepOpen, now, rm); err != nil {
			return r, err
		}
	}
	if err := t.del(direntKey(parent, name)); err != nil {
		return r, err
	}
	r.Ino, r.Parent = e.Ino, touched(p, now)
	return r, t.touchDir(parent, now)
}

// ReleaseInode drops an inode kept by keepOpen once nothing links to it.
// It does nothing for an inode that still has links or is gone.
func (m *Manager) ReleaseInode(ctx context.Context, ino Ino) error {
	var rm removal
	err := m.st.update(ctx, func(t tx) error {
		rm.reset()
		a, err := t.inode(ino)
		if isNotFound(err) {
			return nil
		}
		if err != nil || a.Nlink > 0 {
			return err
		}
		garbage, err := t.removeInode(a)
		if err != nil {
			return err
		}
		rm = removal{inodes: 1, garbage: garbage}
		if a.IsRegular() {
			rm.files = 1
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("metadata: release %d: %w", ino, err)
	}
	m.apply(rm)
	return nil
}

// ReadDir lists directory ino in name order, starting after the name
// after ("" for the start), at most limit entries (0: 1024; at most
// 16384). With plus each entry carries its attributes. eof is set when the
// listing reached the end. "." and ".." are not listed.
func (m *Manager) ReadDir(ctx context.Context, ino Ino, after string, limit int, plus bool) (entries []DirEntry, eof bool, err error) {
	if limit <= 0 {
		limit = defaultReadDirLimit
	}
	limit = min(limit, maxReadDirLimit)
	err = m.st.view(func(t tx) error {
		if _, err := dirInode(t, ino, "readdir"); err != nil {
			return err
		}
		from := direntKey(ino, after)
		eof = true
		return t.scan(direntPrefix(ino), from, true, func(k, v []byte) error {
			_, name, err := decodeDirentKey(k)
			if err != nil {
				return err
			}
			if after != "" && name == after {
				return nil
			}
			if len(entries) == limit {
				eof = false
				return errStop
			}
			e, err := decodeDirent(v)
			if err != nil {
				return fmt.Errorf("metadata: dirent %q in %d: %w", name, ino, err)
			}
			de := DirEntry{Name: name, Ino: e.Ino, Mode: e.Mode}
			if plus {
				a, err := t.attr(e.Ino)
				if err != nil {
					return err
				}
				de.Attr = &a
			}
			entries = append(entries, de)
			return nil
		})
	})
	if err != nil {
		return nil, false, err
	}
	return entries, eof, nil
}

// StatFS sums the live chunkservers' capacity and use.
func (m *Manager) StatFS(ctx context.Context) (FSStats, error) {
	s := FSStats{NameMax: NameMax, Replication: uint32(m.cfg.Replication), Inodes: uint64(m.inodes.Load())}
	now := m.now()
	m.mu.Lock()
	for _, n := range m.cl.byIdx {
		if m.aliveLocked(n, now) {
			s.Capacity += n.rec.Capacity
			s.Used += n.used
		}
	}
	m.mu.Unlock()
	if s.Capacity > s.Used {
		s.Free = s.Capacity - s.Used
	}
	return s, nil
}

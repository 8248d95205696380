package metadata

import (
	"context"
	"fmt"
)

// RenameArgs describes a rename.
type RenameArgs struct {
	OldParent Ino
	OldName   string
	NewParent Ino
	NewName   string
	Flags     uint32 // RenameNoReplace, RenameExchange
	KeepOpen  bool   // as for Unlink, for a replaced file
}

// Rename moves OldParent/OldName to NewParent/NewName atomically, as
// rename(2) and renameat2(2) do:
//
//   - an existing target is replaced: a file by a non-directory, an empty
//     directory by a directory (ErrIsDir, ErrNotDir, ErrNotEmpty otherwise);
//   - renaming a name onto another link of the same inode does nothing;
//   - a directory cannot move into its own subtree (ErrLoop);
//   - RenameNoReplace fails with ErrExists if the target exists;
//   - RenameExchange swaps the two entries, which must both exist.
//
// It returns the replaced inode, if any, whether it is gone (see
// KeepOpen), and both parents' attributes after the call.
func (m *Manager) Rename(ctx context.Context, args RenameArgs) (RenameResult, error) {
	if err := validateName(args.OldName); err != nil {
		return RenameResult{}, err
	}
	if err := validateName(args.NewName); err != nil {
		return RenameResult{}, err
	}
	if args.Flags&^(RenameNoReplace|RenameExchange) != 0 || args.Flags == RenameNoReplace|RenameExchange {
		return RenameResult{}, fmt.Errorf("metadata: rename flags %#x: %w", args.Flags, ErrInvalid)
	}
	var r RenameResult
	var rm removal
	err := m.st.update(ctx, func(t tx) error {
		rm.reset()
		var err error
		r, err = m.rename(t, args, &rm)
		return err
	})
	if err != nil {
		return RenameResult{}, fmt.Errorf("metadata: rename %q in %d to %q in %d: %w",
			args.OldName, args.OldParent, args.NewName, args.NewParent, err)
	}
	m.apply(rm)
	return r, nil
}

// RenameResult is what Rename did.
type RenameResult struct {
	Replaced        Ino  // the inode the new name referred to, if any
	ReplacedRemoved bool // whether that inode is gone
	// The parent directories after the call, as GetAttr would return
	// them (the same when both names are in one directory).
	OldParent, NewParent Attr
}

// renameDirs holds the raw records of the parents a rename touches; when
// both names are in one directory, both pointers are the same record.
// nlink remembers their link counts as read: a record is written back only
// when its count changed, so that renaming files does not write the
// directory records that concurrent creates read.
type renameDirs struct {
	old, new           *Attr
	oldNlink, newNlink uint32
}

func (m *Manager) rename(t tx, args RenameArgs, rm *removal) (RenameResult, error) {
	op, err := dirInode(t, args.OldParent, "rename")
	if err != nil {
		return RenameResult{}, err
	}
	dirs := renameDirs{old: &op, new: &op, oldNlink: op.Nlink, newNlink: op.Nlink}
	if args.NewParent != args.OldParent {
		np, err := dirInode(t, args.NewParent, "rename")
		if err != nil {
			return RenameResult{}, err
		}
		dirs.new, dirs.newNlink = &np, np.Nlink
	}
	se, ok, err := t.dirent(args.OldParent, args.OldName)
	if err != nil {
		return RenameResult{}, err
	}
	if !ok {
		return RenameResult{}, notFound("source")
	}
	src, err := t.inode(se.Ino)
	if err != nil {
		return RenameResult{}, err
	}
	te, targetExists, err := t.dirent(args.NewParent, args.NewName)
	if err != nil {
		return RenameResult{}, err
	}
	if args.OldParent == args.NewParent && args.OldName == args.NewName {
		return unchanged(t, args) // rename onto itself
	}
	now := m.now().UnixNano()

	if args.Flags&RenameExchange != 0 {
		if !targetExists {
			return RenameResult{}, notFound("exchange target")
		}
		dst, err := t.inode(te.Ino)
		if err != nil {
			return RenameResult{}, err
		}
		if src.Ino == dst.Ino {
			return unchanged(t, args)
		}
		if err := m.exchange(t, args, dirs, src, dst, now); err != nil {
			return RenameResult{}, err
		}
		return dirs.result(0, false, now), nil
	}
	if targetExists && args.Flags&RenameNoReplace != 0 {
		return RenameResult{}, ErrExists
	}
	if src.IsDir() && args.OldParent != args.NewParent {
		if err := checkNotAncestor(t, src.Ino, args.NewParent); err != nil {
			return RenameResult{}, err
		}
	}

	var replaced Ino
	var replacedRemoved bool
	if targetExists {
		if te.Ino == src.Ino {
			return unchanged(t, args) // two links to one inode: rename(2) does nothing
		}
		dst, err := t.inode(te.Ino)
		if err != nil {
			return RenameResult{}, err
		}
		replaced = dst.Ino
		switch {
		case src.IsDir() && !dst.IsDir():
			return RenameResult{}, ErrNotDir
		case !src.IsDir() && dst.IsDir():
			return RenameResult{}, ErrIsDir
		case dst.IsDir():
			if err := removeDir(t, dirs.new, dst, rm); err != nil {
				return RenameResult{}, err
			}
			replacedRemoved = true
		default:
			if replacedRemoved, err = dropLink(t, dst, args.KeepOpen, now, rm); err != nil {
				return RenameResult{}, err
			}
		}
	}

	if err := t.del(direntKey(args.OldParent, args.OldName)); err != nil {
		return RenameResult{}, err
	}
	if err := t.putDirent(args.NewParent, args.NewName, se); err != nil {
		return RenameResult{}, err
	}
	src.Ctime = now
	if src.IsDir() && args.OldParent != args.NewParent {
		src.Parent = args.NewParent
		dirs.old.Nlink--
		dirs.new.Nlink++
	}
	if err := t.putInode(src); err != nil {
		return RenameResult{}, err
	}
	if err := finishRename(t, args, dirs, now); err != nil {
		return RenameResult{}, err
	}
	return dirs.result(replaced, replacedRemoved, now), nil
}

// result is a rename's result once finishRename stamped the parents.
func (d renameDirs) result(replaced Ino, removed bool, now int64) RenameResult {
	return RenameResult{
		Replaced: replaced, ReplacedRemoved: removed,
		OldParent: touched(*d.old, now), NewParent: touched(*d.new, now),
	}
}

// unchanged is the result of a rename that changes nothing: the parents as
// they are. The transaction writes nothing, so reading their stamps adds
// no conflict.
func unchanged(t tx, args RenameArgs) (RenameResult, error) {
	op, err := t.attr(args.OldParent)
	if err != nil {
		return RenameResult{}, err
	}
	np, err := t.attr(args.NewParent)
	if err != nil {
		return RenameResult{}, err
	}
	return RenameResult{OldParent: op, NewParent: np}, nil
}

// exchange swaps two entries (RENAME_EXCHANGE).
func (m *Manager) exchange(t tx, args RenameArgs, dirs renameDirs, src, dst Attr, now int64) error {
	if args.OldParent != args.NewParent {
		if src.IsDir() {
			if err := checkNotAncestor(t, src.Ino, args.NewParent); err != nil {
				return err
			}
			src.Parent = args.NewParent
			dirs.old.Nlink--
			dirs.new.Nlink++
		}
		if dst.IsDir() {
			if err := checkNotAncestor(t, dst.Ino, args.OldParent); err != nil {
				return err
			}
			dst.Parent = args.OldParent
			dirs.new.Nlink--
			dirs.old.Nlink++
		}
	}
	if err := t.putDirent(args.OldParent, args.OldName, dirent{Ino: dst.Ino, Mode: dst.Mode & ModeType}); err != nil {
		return err
	}
	if err := t.putDirent(args.NewParent, args.NewName, dirent{Ino: src.Ino, Mode: src.Mode & ModeType}); err != nil {
		return err
	}
	src.Ctime, dst.Ctime = now, now
	if err := t.putInode(src); err != nil {
		return err
	}
	if err := t.putInode(dst); err != nil {
		return err
	}
	return finishRename(t, args, dirs, now)
}

// finishRename writes the parents' records when their nlink changed and
// stamps their times.
func finishRename(t tx, args RenameArgs, dirs renameDirs, now int64) error {
	if dirs.old.Nlink != dirs.oldNlink {
		if err := t.putInode(*dirs.old); err != nil {
			return err
		}
	}
	if err := t.touchDir(args.OldParent, now); err != nil {
		return err
	}
	if args.NewParent == args.OldParent {
		return nil
	}
	if dirs.new.Nlink != dirs.newNlink {
		if err := t.putInode(*dirs.new); err != nil {
			return err
		}
	}
	return t.touchDir(args.NewParent, now)
}

// checkNotAncestor fails with ErrLoop when dir is dest or one of its
// ancestors, found through the directories' parent pointers. Reading the
// ancestors puts them in the transaction's read set, so a concurrent
// rename that changes the chain conflicts with this one.
func checkNotAncestor(t tx, dir, dest Ino) error {
	for cur, depth := dest, 0; ; depth++ {
		if cur == dir {
			return ErrLoop
		}
		if cur == RootIno {
			return nil
		}
		if depth > 1<<16 {
			return fmt.Errorf("metadata: directory %d: parent chain too deep: %w", dest, ErrLoop)
		}
		a, err := t.inode(cur)
		if err != nil {
			return err
		}
		cur = a.Parent
	}
}

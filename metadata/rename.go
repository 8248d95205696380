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
// It returns the replaced inode, if any, and whether it is gone (see
// KeepOpen).
func (m *Manager) Rename(ctx context.Context, args RenameArgs) (replaced Ino, replacedRemoved bool, err error) {
	if err := validateName(args.OldName); err != nil {
		return 0, false, err
	}
	if err := validateName(args.NewName); err != nil {
		return 0, false, err
	}
	if args.Flags&^(RenameNoReplace|RenameExchange) != 0 || args.Flags == RenameNoReplace|RenameExchange {
		return 0, false, fmt.Errorf("metadata: rename flags %#x: %w", args.Flags, ErrInvalid)
	}
	var rm removal
	err = m.st.update(ctx, func(t tx) error {
		rm.reset()
		replaced, replacedRemoved = 0, false
		var err error
		replaced, replacedRemoved, err = m.rename(t, args, &rm)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("metadata: rename %q in %d to %q in %d: %w",
			args.OldName, args.OldParent, args.NewName, args.NewParent, err)
	}
	m.apply(rm)
	return replaced, replacedRemoved, nil
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

func (m *Manager) rename(t tx, args RenameArgs, rm *removal) (Ino, bool, error) {
	op, err := dirInode(t, args.OldParent, "rename")
	if err != nil {
		return 0, false, err
	}
	dirs := renameDirs{old: &op, new: &op, oldNlink: op.Nlink, newNlink: op.Nlink}
	if args.NewParent != args.OldParent {
		np, err := dirInode(t, args.NewParent, "rename")
		if err != nil {
			return 0, false, err
		}
		dirs.new, dirs.newNlink = &np, np.Nlink
	}
	se, ok, err := t.dirent(args.OldParent, args.OldName)
	if err != nil {
		return 0, false, err
	}
	if !ok {
		return 0, false, notFound("source")
	}
	src, err := t.inode(se.Ino)
	if err != nil {
		return 0, false, err
	}
	te, targetExists, err := t.dirent(args.NewParent, args.NewName)
	if err != nil {
		return 0, false, err
	}
	if args.OldParent == args.NewParent && args.OldName == args.NewName {
		return 0, false, nil // rename onto itself
	}
	now := m.now().UnixNano()

	if args.Flags&RenameExchange != 0 {
		if !targetExists {
			return 0, false, notFound("exchange target")
		}
		dst, err := t.inode(te.Ino)
		if err != nil {
			return 0, false, err
		}
		return 0, false, m.exchange(t, args, dirs, src, dst, now)
	}
	if targetExists && args.Flags&RenameNoReplace != 0 {
		return 0, false, ErrExists
	}
	if src.IsDir() && args.OldParent != args.NewParent {
		if err := checkNotAncestor(t, src.Ino, args.NewParent); err != nil {
			return 0, false, err
		}
	}

	var replaced Ino
	var replacedRemoved bool
	if targetExists {
		if te.Ino == src.Ino {
			return 0, false, nil // two links to one inode: rename(2) does nothing
		}
		dst, err := t.inode(te.Ino)
		if err != nil {
			return 0, false, err
		}
		replaced = dst.Ino
		switch {
		case src.IsDir() && !dst.IsDir():
			return 0, false, ErrNotDir
		case !src.IsDir() && dst.IsDir():
			return 0, false, ErrIsDir
		case dst.IsDir():
			if err := removeDir(t, dirs.new, dst, rm); err != nil {
				return 0, false, err
			}
			replacedRemoved = true
		default:
			if replacedRemoved, err = dropLink(t, dst, args.KeepOpen, now, rm); err != nil {
				return 0, false, err
			}
		}
	}

	if err := t.del(direntKey(args.OldParent, args.OldName)); err != nil {
		return 0, false, err
	}
	if err := t.putDirent(args.NewParent, args.NewName, se); err != nil {
		return 0, false, err
	}
	src.Ctime = now
	if src.IsDir() && args.OldParent != args.NewParent {
		src.Parent = args.NewParent
		dirs.old.Nlink--
		dirs.new.Nlink++
	}
	if err := t.putInode(src); err != nil {
		return 0, false, err
	}
	return replaced, replacedRemoved, finishRename(t, args, dirs, now)
}

// exchange swaps two entries (RENAME_EXCHANGE).
func (m *Manager) exchange(t tx, args RenameArgs, dirs renameDirs, src, dst Attr, now int64) error {
	if src.Ino == dst.Ino {
		return nil
	}
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

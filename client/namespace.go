package client

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// File type bits, as in struct stat.
const (
	modeType    = 0o170000
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
)

// Lookup returns the attributes of name in the directory parent.
func (c *Client) Lookup(ctx context.Context, parent Ino, name string) (Attr, error) {
	var resp *shoalpb.LookupResponse
	err := c.do(ctx, "lookup", entryPath(parent, name), func(ctx context.Context) (err error) {
		resp, err = c.mgr.Lookup(ctx, &shoalpb.LookupRequest{Parent: uint64(parent), Name: name})
		return err
	})
	if err != nil {
		return Attr{}, err
	}
	return attrFromPB(resp.GetAttr()), nil
}

// GetAttr returns the attributes of ino.
func (c *Client) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	var resp *shoalpb.GetAttrResponse
	err := c.do(ctx, "getattr", inoPath(ino), func(ctx context.Context) (err error) {
		resp, err = c.mgr.GetAttr(ctx, &shoalpb.GetAttrRequest{Ino: uint64(ino)})
		return err
	})
	if err != nil {
		return Attr{}, err
	}
	return attrFromPB(resp.GetAttr()), nil
}

// SetAttr changes the attributes set in s and returns the result. A size
// change truncates or extends the file on the manager; a File open on it
// should use File.Truncate instead, which flushes its buffered writes
// first and keeps its cached layout right.
func (c *Client) SetAttr(ctx context.Context, ino Ino, s SetAttr) (Attr, error) {
	var resp *shoalpb.SetAttrResponse
	req := setAttrToPB(ino, s)
	err := c.do(ctx, "setattr", inoPath(ino), func(ctx context.Context) (err error) {
		resp, err = c.mgr.SetAttr(ctx, req)
		return err
	})
	if err != nil {
		return Attr{}, err
	}
	return attrFromPB(resp.GetAttr()), nil
}

// Create makes a file (a regular one unless o.Mode has other type bits)
// named name in parent. Without o.Exclusive an existing regular file is
// returned as it is. With it, an existing name fails with EEXIST, even
// when the name exists because an earlier attempt of this same call
// succeeded and its reply was lost (see doc.go, "Retries").
func (c *Client) Create(ctx context.Context, parent Ino, name string, o CreateOptions) (Entry, error) {
	mode := o.Mode
	if mode&modeType == 0 {
		mode |= modeRegular
	}
	return c.create(ctx, "create", &shoalpb.CreateRequest{
		Parent: uint64(parent), Name: name, Mode: mode, Uid: o.UID, Gid: o.GID,
		Rdev: o.Rdev, ChunkSize: o.ChunkSize, Exclusive: o.Exclusive, Allocate: o.Allocate,
	}, nil)
}

// create sends req. An EEXIST after a retry may be the lost reply of an
// attempt that made the name: if ours (non-nil) says the name's
// attributes are what req would have made, that is success (an Entry
// without Parent).
func (c *Client) create(ctx context.Context, op string, req *shoalpb.CreateRequest, ours func(Attr) bool) (Entry, error) {
	asked := time.Now() // an allocation's age counts from before the first attempt
	var resp *shoalpb.CreateResponse
	amb, err := c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = c.mgr.Create(ctx, req)
		return err
	})
	if amb && errors.Is(err, syscall.EEXIST) && ours != nil {
		if a, lerr := c.Lookup(ctx, Ino(req.Parent), req.Name); lerr == nil && ours(a) {
			return Entry{Attr: a}, nil
		}
	}
	if err != nil {
		return Entry{}, opErr(op, entryPath(Ino(req.Parent), req.Name), err)
	}
	e := Entry{Attr: attrFromPB(resp.GetAttr()), Parent: optAttrFromPB(resp.GetParent())}
	if fc := resp.GetFirstChunk(); fc != nil && resp.GetCreated() {
		e.first = &firstChunk{alloc: fc, at: asked}
	}
	return e, nil
}

// Mkdir makes the directory name in parent. mode holds the permissions.
func (c *Client) Mkdir(ctx context.Context, parent Ino, name string, mode, uid, gid uint32) (Entry, error) {
	return c.create(ctx, "mkdir", &shoalpb.CreateRequest{
		Parent: uint64(parent), Name: name, Mode: modeDir | mode&0o7777, Uid: uid, Gid: gid,
	}, func(a Attr) bool { return a.IsDir() }) // a lost reply: the directory may be ours
}

// Symlink makes name in parent a symbolic link to target.
func (c *Client) Symlink(ctx context.Context, parent Ino, name, target string, uid, gid uint32) (Entry, error) {
	return c.create(ctx, "symlink", &shoalpb.CreateRequest{
		Parent: uint64(parent), Name: name, Mode: modeSymlink | 0o777, Uid: uid, Gid: gid, SymlinkTarget: target,
	}, func(a Attr) bool { return a.Mode&modeType == modeSymlink && a.Target == target })
}

// Link adds the name newName in newParent for ino.
func (c *Client) Link(ctx context.Context, ino, newParent Ino, newName string) (Entry, error) {
	var resp *shoalpb.LinkResponse
	amb, err := c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = c.mgr.Link(ctx, &shoalpb.LinkRequest{Ino: uint64(ino), NewParent: uint64(newParent), NewName: newName})
		return err
	})
	if amb && errors.Is(err, syscall.EEXIST) {
		if a, lerr := c.Lookup(ctx, newParent, newName); lerr == nil && a.Ino == ino {
			return Entry{Attr: a}, nil
		}
	}
	if err != nil {
		return Entry{}, opErr("link", entryPath(newParent, newName), err)
	}
	return Entry{Attr: attrFromPB(resp.GetAttr()), Parent: optAttrFromPB(resp.GetParent())}, nil
}

// Unlink removes the name of a non-directory. It reports the inode that
// lost a link and whether that inode is gone for good; with keepOpen, an
// inode whose last link went away stays until ReleaseInode. If an earlier
// attempt succeeded but its reply was lost, the retry's ENOENT is taken
// as success and Unlink returns an empty Removal.
func (c *Client) Unlink(ctx context.Context, parent Ino, name string, keepOpen bool) (Removal, error) {
	return c.unlink(ctx, "unlink", parent, name, false, keepOpen)
}

// Rmdir removes the empty directory name in parent.
func (c *Client) Rmdir(ctx context.Context, parent Ino, name string) (Removal, error) {
	return c.unlink(ctx, "rmdir", parent, name, true, false)
}

func (c *Client) unlink(ctx context.Context, op string, parent Ino, name string, dir, keepOpen bool) (Removal, error) {
	var resp *shoalpb.UnlinkResponse
	amb, err := c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = c.mgr.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: uint64(parent), Name: name, Dir: dir, KeepOpen: keepOpen})
		return err
	})
	if amb && errors.Is(err, syscall.ENOENT) {
		return Removal{}, nil
	}
	if err != nil {
		return Removal{}, opErr(op, entryPath(parent, name), err)
	}
	return removalFromPB(resp), nil
}

func removalFromPB(r *shoalpb.UnlinkResponse) Removal {
	return Removal{Ino: Ino(r.GetIno()), Removed: r.GetRemoved(), Parent: optAttrFromPB(r.GetParent())}
}

// UnlinkEntry is one name for UnlinkBatch to remove.
type UnlinkEntry struct {
	Parent   Ino
	Name     string
	KeepOpen bool
}

// MaxUnlinkBatch is the most names one UnlinkBatch call takes.
const MaxUnlinkBatch = 256

// UnlinkBatch removes several names that are not directories in one
// manager call (one transaction). Each name succeeds or fails on its own,
// as Unlink would: errs[i] is ops[i]'s error. A retry after a lost reply
// finds the names removed then gone: those report success with an empty
// Removal, as Unlink does. err is for the call as a whole: then nothing
// is known to have happened to any name.
func (c *Client) UnlinkBatch(ctx context.Context, ops []UnlinkEntry) (rs []Removal, errs []error, err error) {
	req := &shoalpb.UnlinkBatchRequest{Unlinks: make([]*shoalpb.UnlinkRequest, len(ops))}
	for i, op := range ops {
		req.Unlinks[i] = &shoalpb.UnlinkRequest{Parent: uint64(op.Parent), Name: op.Name, KeepOpen: op.KeepOpen}
	}
	var resp *shoalpb.UnlinkBatchResponse
	amb, err := c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = c.mgr.UnlinkBatch(ctx, req)
		return err
	})
	if err == nil && len(resp.GetOutcomes()) != len(ops) {
		err = eio("unlink batch: %d outcomes for %d names", len(resp.GetOutcomes()), len(ops))
	}
	if err != nil {
		return nil, nil, opErr("unlink", fmt.Sprintf("%d names", len(ops)), err)
	}
	rs, errs = make([]Removal, len(ops)), make([]error, len(ops))
	for i, o := range resp.GetOutcomes() {
		if ok := o.GetOk(); ok != nil {
			rs[i] = removalFromPB(ok)
			continue
		}
		st := status.New(codes.Code(o.GetCode()), o.GetMessage())
		if o.GetReason() != shoalpb.ErrorDetail_UNSPECIFIED {
			if d, derr := st.WithDetails(&shoalpb.ErrorDetail{Reason: o.GetReason()}); derr == nil {
				st = d
			}
		}
		e := fromStatus(st.Err())
		if amb && errors.Is(e, syscall.ENOENT) {
			continue // removed by an attempt whose reply was lost
		}
		errs[i] = opErr("unlink", entryPath(ops[i].Parent, ops[i].Name), e)
	}
	return rs, errs, nil
}

// Rename moves oldName in oldParent to newName in newParent, replacing
// newName atomically. flags are renameat2's RENAME_NOREPLACE and
// RENAME_EXCHANGE. It reports a replaced inode, if any, and whether it is
// gone for good. If an earlier attempt succeeded but its reply was lost,
// the retry fails with ENOENT; Rename then checks that newName exists and
// oldName does not, and reports success (an empty Renaming).
func (c *Client) Rename(ctx context.Context, oldParent Ino, oldName string, newParent Ino, newName string, flags uint32, keepOpen bool) (Renaming, error) {
	var resp *shoalpb.RenameResponse
	amb, err := c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = c.mgr.Rename(ctx, &shoalpb.RenameRequest{
			OldParent: uint64(oldParent), OldName: oldName, NewParent: uint64(newParent), NewName: newName,
			Flags: flags, KeepOpen: keepOpen,
		})
		return err
	})
	if amb && errors.Is(err, syscall.ENOENT) {
		_, oerr := c.Lookup(ctx, oldParent, oldName)
		_, nerr := c.Lookup(ctx, newParent, newName)
		if errors.Is(oerr, syscall.ENOENT) && nerr == nil {
			return Renaming{}, nil
		}
	}
	if err != nil {
		return Renaming{}, opErr("rename", entryPath(oldParent, oldName)+" -> "+entryPath(newParent, newName), err)
	}
	return Renaming{
		Replaced: Ino(resp.GetReplacedIno()), ReplacedRemoved: resp.GetReplacedRemoved(),
		OldParent: optAttrFromPB(resp.GetOldParent()), NewParent: optAttrFromPB(resp.GetNewParent()),
	}, nil
}

// ReleaseInode drops an inode kept by keepOpen once the caller closed it.
func (c *Client) ReleaseInode(ctx context.Context, ino Ino) error {
	return c.do(ctx, "release", inoPath(ino), func(ctx context.Context) error {
		_, err := c.mgr.ReleaseInode(ctx, &shoalpb.ReleaseInodeRequest{Ino: uint64(ino)})
		return err
	})
}

// ReadDir lists the directory ino, without "." and "..".
func (c *Client) ReadDir(ctx context.Context, ino Ino) ([]DirEntry, error) {
	return c.readDir(ctx, ino, false)
}

// ReadDirPlus is ReadDir with each entry's Attr set.
func (c *Client) ReadDirPlus(ctx context.Context, ino Ino) ([]DirEntry, error) {
	return c.readDir(ctx, ino, true)
}

func (c *Client) readDir(ctx context.Context, ino Ino, plus bool) ([]DirEntry, error) {
	out := []DirEntry{}
	after := ""
	for {
		var resp *shoalpb.ReadDirResponse
		err := c.do(ctx, "readdir", inoPath(ino), func(ctx context.Context) (err error) {
			resp, err = c.mgr.ReadDir(ctx, &shoalpb.ReadDirRequest{Ino: uint64(ino), After: after, Plus: plus})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetEntries() {
			out = append(out, dirEntryFromPB(e))
		}
		if resp.GetEof() || len(resp.GetEntries()) == 0 {
			return out, nil
		}
		after = out[len(out)-1].Name
	}
}

// StatFS returns the cluster's capacity.
func (c *Client) StatFS(ctx context.Context) (StatFS, error) {
	var resp *shoalpb.StatFSResponse
	err := c.do(ctx, "statfs", "", func(ctx context.Context) (err error) {
		resp, err = c.mgr.StatFS(ctx, &shoalpb.StatFSRequest{})
		return err
	})
	if err != nil {
		return StatFS{}, err
	}
	return StatFS{
		CapacityBytes: resp.GetCapacityBytes(),
		UsedBytes:     resp.GetUsedBytes(),
		FreeBytes:     resp.GetFreeBytes(),
		Files:         resp.GetFiles(),
		NameMax:       resp.GetNameMax(),
	}, nil
}

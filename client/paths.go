package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"
)

// splitPath checks that p is absolute and returns its components after
// path.Clean ("/" has none).
func splitPath(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%w: path %q is not absolute", syscall.EINVAL, p)
	}
	p = path.Clean(p)
	if p == "/" {
		return nil, nil
	}
	return strings.Split(p[1:], "/"), nil
}

func rootAttr() Attr { return Attr{Ino: RootIno, Mode: modeDir | 0o755} }

// Resolve returns the attributes at the absolute path p. Symbolic links
// are not followed (lstat semantics, also for intermediate components).
func (c *Client) Resolve(ctx context.Context, p string) (Attr, error) {
	parts, err := splitPath(p)
	if err != nil {
		return Attr{}, opErr("resolve", p, err)
	}
	if len(parts) == 0 {
		return c.GetAttr(ctx, RootIno)
	}
	cur := RootIno
	var a Attr
	for _, name := range parts {
		if a, err = c.Lookup(ctx, cur, name); err != nil {
			return Attr{}, opErr("resolve", p, unwrapOp(err))
		}
		cur = a.Ino
	}
	return a, nil
}

// resolveParent returns the directory holding the last component of p,
// and that component.
func (c *Client) resolveParent(ctx context.Context, op, p string) (Attr, string, error) {
	parts, err := splitPath(p)
	if err != nil {
		return Attr{}, "", opErr(op, p, err)
	}
	if len(parts) == 0 {
		return Attr{}, "", opErr(op, p, fmt.Errorf("%w: the root has no parent", syscall.EINVAL))
	}
	dir, err := c.Resolve(ctx, "/"+strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return Attr{}, "", err
	}
	if !dir.IsDir() {
		return Attr{}, "", opErr(op, p, syscall.ENOTDIR)
	}
	return dir, parts[len(parts)-1], nil
}

// MkdirAll makes the directory p and any missing parents with mode's
// permissions, and returns p's attributes. An existing directory is fine;
// an existing non-directory on the way fails with ENOTDIR.
func (c *Client) MkdirAll(ctx context.Context, p string, mode uint32) (Attr, error) {
	parts, err := splitPath(p)
	if err != nil {
		return Attr{}, opErr("mkdir", p, err)
	}
	a := rootAttr()
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	for _, name := range parts {
		next, err := c.Lookup(ctx, a.Ino, name)
		if errors.Is(err, syscall.ENOENT) {
			var e Entry
			e, err = c.Mkdir(ctx, a.Ino, name, mode, uid, gid)
			next = e.Attr
			if errors.Is(err, syscall.EEXIST) { // lost a race; fine if a directory
				next, err = c.Lookup(ctx, a.Ino, name)
			}
		}
		if err != nil {
			return Attr{}, opErr("mkdir", p, unwrapOp(err))
		}
		if !next.IsDir() {
			return Attr{}, opErr("mkdir", p, fmt.Errorf("%w: %q is not a directory", syscall.ENOTDIR, name))
		}
		a = next
	}
	if len(parts) == 0 {
		return c.GetAttr(ctx, RootIno)
	}
	return a, nil
}

// Remove removes the file, link or empty directory at p; with recursive,
// a directory and everything in it. The root cannot be removed.
func (c *Client) Remove(ctx context.Context, p string, recursive bool) error {
	dir, name, err := c.resolveParent(ctx, "remove", p)
	if err != nil {
		return err
	}
	a, err := c.Lookup(ctx, dir.Ino, name)
	if err != nil {
		return opErr("remove", p, unwrapOp(err))
	}
	if err := c.removeEntry(ctx, dir.Ino, name, a, recursive); err != nil {
		return opErr("remove", p, unwrapOp(err))
	}
	return nil
}

func (c *Client) removeEntry(ctx context.Context, parent Ino, name string, a Attr, recursive bool) error {
	if !a.IsDir() {
		_, err := c.Unlink(ctx, parent, name, false)
		return err
	}
	if recursive {
		ents, err := c.ReadDirPlus(ctx, a.Ino)
		if err != nil {
			return err
		}
		for _, e := range ents {
			ea := Attr{Ino: e.Ino, Mode: e.Mode}
			if e.Attr != nil {
				ea = *e.Attr
			}
			if err := c.removeEntry(ctx, a.Ino, e.Name, ea, true); err != nil {
				return err
			}
		}
	}
	_, err := c.Rmdir(ctx, parent, name)
	return err
}

// RenamePath renames from to to, replacing to if it exists.
func (c *Client) RenamePath(ctx context.Context, from, to string) error {
	fd, fname, err := c.resolveParent(ctx, "rename", from)
	if err != nil {
		return err
	}
	td, tname, err := c.resolveParent(ctx, "rename", to)
	if err != nil {
		return err
	}
	_, err = c.Rename(ctx, fd.Ino, fname, td.Ino, tname, 0, false)
	return err
}

// List returns the entries of the directory at p with their attributes,
// or, for anything else, the one entry for p itself.
func (c *Client) List(ctx context.Context, p string) ([]DirEntry, error) {
	a, err := c.Resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	if !a.IsDir() {
		return []DirEntry{{Name: path.Base(path.Clean(p)), Ino: a.Ino, Mode: a.Mode, Attr: &a}}, nil
	}
	return c.ReadDirPlus(ctx, a.Ino)
}

// copyBuf is the size of the reads and writes of Put and Get.
const copyBuf = 1 << 20

// Put writes everything r yields to the file p, creating it (mode 0644)
// or truncating it, and closes it, so the data is durable when Put
// returns. size is the expected length, for progress and a check; -1 if
// unknown. The parent directory must exist.
func (c *Client) Put(ctx context.Context, r io.Reader, size int64, p string, prog Progress) (Attr, error) {
	dir, name, err := c.resolveParent(ctx, "put", p)
	if err != nil {
		return Attr{}, err
	}
	a, err := c.Create(ctx, dir.Ino, name, CreateOptions{Mode: 0o644, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
	if err != nil {
		return Attr{}, opErr("put", p, unwrapOp(err))
	}
	if a.IsDir() {
		return Attr{}, opErr("put", p, syscall.EISDIR)
	}
	if a.Size > 0 {
		zero := uint64(0)
		if _, err := c.SetAttr(ctx, a.Ino, SetAttr{Size: &zero}); err != nil {
			return Attr{}, opErr("put", p, unwrapOp(err))
		}
	}
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		return Attr{}, opErr("put", p, unwrapOp(err))
	}
	n, werr := copyIn(ctx, f, r, size, prog)
	if werr == nil {
		// An upload is done when it is on disk, not only replicated.
		werr = f.Sync(ctx)
	}
	if cerr := f.Close(ctx); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return Attr{}, opErr("put", p, unwrapOp(werr))
	}
	if size >= 0 && n != size {
		return Attr{}, opErr("put", p, fmt.Errorf("%w: read %d bytes, expected %d", io.ErrUnexpectedEOF, n, size))
	}
	return c.GetAttr(ctx, a.Ino)
}

func copyIn(ctx context.Context, f *File, r io.Reader, size int64, prog Progress) (int64, error) {
	buf := make([]byte, copyBuf)
	var off int64
	for {
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			if _, err := f.WriteAt(ctx, buf[:m], off); err != nil {
				return off, err
			}
			off += int64(m)
			if prog != nil {
				prog(off, size)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return off, nil
		}
		if rerr != nil {
			return off, rerr
		}
	}
}

// Get copies the file at p to w and returns the bytes copied.
func (c *Client) Get(ctx context.Context, p string, w io.Writer, prog Progress) (int64, error) {
	a, err := c.Resolve(ctx, p)
	if err != nil {
		return 0, err
	}
	if a.IsDir() {
		return 0, opErr("get", p, syscall.EISDIR)
	}
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		return 0, opErr("get", p, unwrapOp(err))
	}
	defer f.Close(ctx)
	total := f.Size()
	buf := make([]byte, copyBuf)
	var off int64
	for {
		m, rerr := f.ReadAt(ctx, buf, off)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return off, opErr("get", p, err)
			}
			off += int64(m)
			if prog != nil {
				prog(off, total)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return off, nil
		}
		if rerr != nil {
			return off, opErr("get", p, unwrapOp(rerr))
		}
	}
}

// unwrapOp strips one OpError, so path operations report the path rather
// than the inode.
func unwrapOp(err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

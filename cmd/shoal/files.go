package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shoalfs/shoal/client"
)

// withClient parses the flags, checks the argument count, and runs fn
// with a client of the manager.
func withClient(ctx context.Context, e env, f *cmdFlags, args []string, minArgs, maxArgs int,
	fn func(c *client.Client, args []string) error) error {
	if err := parse(f.fs, args); err != nil {
		return err
	}
	n := f.fs.NArg()
	if n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		f.fs.Usage()
		return fmt.Errorf("%w: %s: wrong number of arguments", errUsage, f.fs.Name())
	}
	c, err := dial(*f.manager, *f.opTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c, f.fs.Args())
}

// cmdFlags are the flags every client command has.
type cmdFlags struct {
	fs        *flag.FlagSet
	manager   *string
	opTimeout *time.Duration
}

func newCmdFlags(e env, name, args string) *cmdFlags {
	fs := newFlagSet(e, name, args)
	return &cmdFlags{fs: fs, manager: managerFlag(e, fs),
		opTimeout: fs.Duration("op-timeout", client.DefaultConfig().OpTimeout, "give up on an unreachable manager or chunkserver after this long")}
}

func runPut(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "put", "LOCAL|- REMOTE")
	quiet := f.fs.Bool("q", false, "no progress bar")
	return withClient(ctx, e, f, args, 2, 2, func(c *client.Client, a []string) error {
		src, dst := a[0], a[1]
		var r io.Reader = e.stdin
		size := int64(-1)
		if src != "-" {
			file, err := os.Open(src)
			if err != nil {
				return err
			}
			defer file.Close()
			st, err := file.Stat()
			if err != nil {
				return err
			}
			if st.IsDir() {
				return fmt.Errorf("put %s: is a directory", src)
			}
			r, size = file, st.Size()
			// Copying into a directory keeps the file's name, as cp does.
			if at, err := c.Resolve(ctx, dst); err == nil && at.IsDir() {
				dst = path.Join(dst, filepath.Base(src))
			}
		}
		// Like `hdfs dfs -put`, make the parent directories.
		if _, err := c.MkdirAll(ctx, path.Dir(path.Clean(dst)), 0o755); err != nil {
			return err
		}
		bar := newProgress(e.stderr, "put "+dst, !*quiet)
		_, err := c.Put(ctx, r, size, dst, bar.update)
		bar.finish(err)
		return err
	})
}

func runGet(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "get", "REMOTE LOCAL|-")
	quiet := f.fs.Bool("q", false, "no progress bar")
	return withClient(ctx, e, f, args, 2, 2, func(c *client.Client, a []string) error {
		src, dst := a[0], a[1]
		if dst == "-" {
			_, err := c.Get(ctx, src, e.stdout, nil)
			return err
		}
		if st, err := os.Stat(dst); err == nil && st.IsDir() {
			dst = filepath.Join(dst, path.Base(src))
		}
		// Write beside the target and rename over it only when every byte
		// arrived, so a failed get never clobbers an existing file.
		tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".shoal-get-*")
		if err != nil {
			return err
		}
		ok := false
		defer func() {
			if !ok {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		bar := newProgress(e.stderr, "get "+src, !*quiet)
		_, err = c.Get(ctx, src, tmp, bar.update)
		bar.finish(err)
		if err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return err
		}
		ok = true
		return nil
	})
}

func runCat(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "cat", "REMOTE...")
	return withClient(ctx, e, f, args, 1, -1, func(c *client.Client, a []string) error {
		for _, p := range a {
			if _, err := c.Get(ctx, p, e.stdout, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

func runLs(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "ls", "[REMOTE]")
	long := f.fs.Bool("l", false, "long listing: mode, links, owner, size, time")
	return withClient(ctx, e, f, args, 0, 1, func(c *client.Client, a []string) error {
		p := "/"
		if len(a) == 1 {
			p = a[0]
		}
		at, err := c.Resolve(ctx, p)
		if err != nil {
			return err
		}
		var ents []client.DirEntry
		if at.IsDir() {
			if ents, err = c.List(ctx, p); err != nil {
				return err
			}
		} else {
			ents = []client.DirEntry{{Name: path.Base(p), Ino: at.Ino, Mode: at.Mode, Attr: &at}}
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 1, ' ', tabwriter.AlignRight)
		for _, d := range ents {
			name := d.Name
			if !*long || d.Attr == nil {
				fmt.Fprintln(e.stdout, name)
				continue
			}
			a := d.Attr
			if a.Target != "" {
				name += " -> " + a.Target
			}
			fmt.Fprintf(tw, "%s\t %d\t %d\t %d\t %d\t %s\t %s\n", modeString(a.Mode),
				a.Nlink, a.UID, a.GID, a.Size, a.Mtime.Local().Format(time.DateTime), name)
		}
		return tw.Flush()
	})
}

// modeString renders a Unix mode like ls -l: drwxr-xr-x.
func modeString(m uint32) string {
	typ := map[uint32]byte{0o040000: 'd', 0o120000: 'l', 0o100000: '-', 0o010000: 'p', 0o140000: 's', 0o020000: 'c', 0o060000: 'b'}[m&0o170000]
	if typ == 0 {
		typ = '?'
	}
	b := []byte{typ}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	return string(b)
}

func runMkdir(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "mkdir", "REMOTE...")
	parents := f.fs.Bool("p", false, "make parent directories as needed; no error if it exists")
	return withClient(ctx, e, f, args, 1, -1, func(c *client.Client, a []string) error {
		for _, p := range a {
			if *parents {
				if _, err := c.MkdirAll(ctx, p, 0o755); err != nil {
					return err
				}
				continue
			}
			parent, err := c.Resolve(ctx, path.Dir(path.Clean(p)))
			if err != nil {
				return fmt.Errorf("mkdir %s: %w", p, err)
			}
			if _, err := c.Mkdir(ctx, parent.Ino, path.Base(p), 0o755, uint32(os.Getuid()), uint32(os.Getgid())); err != nil {
				return fmt.Errorf("mkdir %s: %w", p, err)
			}
		}
		return nil
	})
}

func runRm(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "rm", "REMOTE...")
	recursive := f.fs.Bool("r", false, "remove directories and their contents")
	force := f.fs.Bool("f", false, "ignore missing files")
	return withClient(ctx, e, f, args, 1, -1, func(c *client.Client, a []string) error {
		for _, p := range a {
			// Like rm(1), refuse a directory without -r, empty or not.
			if at, err := c.Resolve(ctx, p); err == nil && at.IsDir() && !*recursive {
				return fmt.Errorf("rm %s: %w (use -r)", p, syscall.EISDIR)
			}
			err := c.Remove(ctx, p, *recursive)
			if err != nil && !(*force && errors.Is(err, fs.ErrNotExist)) {
				return err
			}
		}
		return nil
	})
}

func runMv(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "mv", "FROM TO")
	return withClient(ctx, e, f, args, 2, 2, func(c *client.Client, a []string) error {
		from, to := a[0], a[1]
		// Moving onto a directory moves into it, as mv does.
		if at, err := c.Resolve(ctx, to); err == nil && at.IsDir() {
			to = path.Join(to, path.Base(from))
		}
		return c.RenamePath(ctx, from, to)
	})
}

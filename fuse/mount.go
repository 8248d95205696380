package fuse

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/shoalfs/shoal/client"
)

// Server is a mounted shoal filesystem.
type Server struct {
	srv        *gofuse.Server
	fs         *fileSystem
	mountpoint string
	dev        uint64 // the mount's device number, which names its FUSE connection
	o          Options
	log        *logrus.Entry

	done chan struct{} // closed when the serve loop has ended

	unmountOnce sync.Once
	unmountErr  error
}

// Mount mounts the cluster that c talks to at mountpoint, an existing
// directory, and serves it until Unmount (or until someone unmounts it
// from outside; see Done). It first checks that the manager answers, so
// a dead cluster is an error here rather than a mount that fails every
// operation. The caller keeps ownership of c and closes it after
// Unmount returns.
func Mount(ctx context.Context, c *client.Client, mountpoint string, o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.FsName == "" {
		o.FsName = "shoal"
	}
	st, err := os.Stat(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("fuse: mountpoint: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("fuse: mountpoint %s: %w", mountpoint, syscall.ENOTDIR)
	}
	rootAttr, err := c.GetAttr(ctx, client.RootIno)
	if err != nil {
		return nil, fmt.Errorf("fuse: the manager does not answer: %w", err)
	}
	log := o.logger().WithField("mountpoint", mountpoint)
	o.Log = log
	fsys := newFileSystem(c, o)
	root := &node{fs: fsys}
	root.remember(rootAttr)

	srv, err := gofs.Mount(mountpoint, root, goFuseOptions(o))
	if err != nil {
		fsys.unlinks.close()
		return nil, fmt.Errorf("fuse: mount %s: %w", mountpoint, err)
	}
	s := &Server{srv: srv, fs: fsys, mountpoint: mountpoint, o: o, log: log, done: make(chan struct{})}
	// Owned by the Server: it ends with the serve loop, which Unmount
	// ends.
	go func() {
		srv.Wait()
		close(s.done)
	}()
	var mst syscall.Stat_t
	if err := syscall.Stat(mountpoint, &mst); err == nil {
		s.dev = mst.Dev
	}
	log.WithField("fsname", o.FsName).Info("mounted")
	return s, nil
}

func goFuseOptions(o Options) *gofs.Options {
	mo := gofuse.MountOptions{
		AllowOther: o.AllowOther,
		FsName:     o.FsName,
		Name:       "shoal",
		// The kernel checks permissions against the modes and owners we
		// report, as for a local filesystem. It also applies the umask
		// before modes reach us (go-fuse does not ask for
		// FUSE_DONT_MASK), so nothing here applies it again.
		Options:  []string{"default_permissions"},
		MaxWrite: o.MaxWrite,
		// shoal stores no extended attributes. go-fuse answers every
		// xattr request with ENOSYS, which tells the kernel (fs/fuse's
		// no_getxattr etc.) never to ask again: otherwise it sends a
		// GETXATTR of security.capability before every write. Callers
		// get EOPNOTSUPP, which cp -a, tar, rsync and ls handle as "no
		// xattr support".
		DisableXAttrs: true,
		// Enough concurrent background requests for kernel readahead
		// and async reads to keep the client's pipelines busy.
		MaxBackground: 64,
		// As root, mount(2) directly; otherwise fall back to fusermount3.
		DirectMount: os.Geteuid() == 0,
		Debug:       o.Debug,
		Logger:      newStdLogger(o.Log, o.Debug),
	}
	if o.ReadOnly {
		mo.Options = append(mo.Options, "ro")
		mo.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
	}
	return &gofs.Options{
		MountOptions:    mo,
		AttrTimeout:     &o.AttrTimeout,
		EntryTimeout:    &o.EntryTimeout,
		NegativeTimeout: &o.NegativeTimeout,
		// Modes are reported as they are: a file with mode 000 shows
		// 000, as on a local disk.
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: uint64(client.RootIno), Gen: 1},
		Logger:          newStdLogger(o.Log, false),
	}
}

// newStdLogger adapts a logrus entry to the *log.Logger go-fuse writes
// to: request traces at debug level, anything else as warnings.
func newStdLogger(e *logrus.Entry, debug bool) *log.Logger {
	lvl := logrus.WarnLevel
	if debug {
		lvl = logrus.DebugLevel
	}
	return log.New(logWriter{e: e.WithField("component", "go-fuse"), lvl: lvl}, "", 0)
}

type logWriter struct {
	e   *logrus.Entry
	lvl logrus.Level
}

func (w logWriter) Write(p []byte) (int, error) {
	w.e.Log(w.lvl, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Mountpoint is the directory the filesystem is mounted on.
func (s *Server) Mountpoint() string { return s.mountpoint }

// Done is closed when the serve loop has ended: after Unmount, or when
// the filesystem was unmounted from outside (umount, fusermount3 -u).
func (s *Server) Done() <-chan struct{} { return s.done }

// Sync commits the buffered data of every file open in the mount.
func (s *Server) Sync(ctx context.Context) error {
	return s.fs.syncAll(ctx)
}

// Unmount commits the data of open files, unmounts and waits for the
// serve loop to end. If the mount is busy (a process has a file open or
// its working directory in it) it is detached lazily: it disappears
// from the namespace at once, and its users keep working until they let
// go, for at most Options.UnmountTimeout, after which the FUSE
// connection is aborted (their next operation fails with ENOTCONN).
// Files the kernel never released are then closed. Unmount may be
// called more than once; later calls return the first one's result.
func (s *Server) Unmount() error {
	s.unmountOnce.Do(func() { s.unmountErr = s.unmount() })
	return s.unmountErr
}

func (s *Server) unmount() error {
	timeout := s.o.UnmountTimeout
	if timeout == 0 {
		timeout = DefaultOptions().UnmountTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if err := s.fs.syncAll(ctx); err != nil {
		errs = append(errs, fmt.Errorf("fuse: sync open files: %w", err))
	}
	select {
	case <-s.done:
		// Unmounted from outside already.
	default:
		if err := s.srv.Unmount(); err != nil {
			s.log.WithError(err).Info("mount busy; detaching lazily")
			if err := detach(s.mountpoint); err != nil {
				s.log.WithError(err).Warn("lazy unmount")
			}
			if !s.waitDone(timeout) {
				s.log.Warn("mount still in use; aborting the FUSE connection")
				if err := abortConnection(s.dev); err != nil {
					errs = append(errs, fmt.Errorf("fuse: abort connection: %w", err))
				}
				if !s.waitDone(timeout) {
					errs = append(errs, errors.New("fuse: unmount: the serve loop did not end"))
				}
			}
		} else {
			<-s.done
		}
	}
	// Removals still queued go to the manager before the mount is gone
	// (each batch bounded by the client's OpTimeout).
	s.fs.unlinks.close()
	// Close what the kernel never released, with a fresh deadline: a
	// detached mount's users may have written after the first sync.
	cctx, ccancel := context.WithTimeout(context.Background(), timeout)
	defer ccancel()
	s.fs.closeAll(cctx)
	s.log.Info("unmounted")
	return errors.Join(errs...)
}

func (s *Server) waitDone(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return true
	case <-t.C:
		return false
	}
}

package fuse

import (
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"
)

// Options configure a mount. Start from DefaultOptions.
type Options struct {
	// AttrTimeout is how long the kernel may cache a file's attributes
	// (size, mode, times) before asking again. It bounds how stale a
	// size or mtime changed by another mount can look here.
	AttrTimeout time.Duration
	// EntryTimeout is how long the kernel may cache a name → inode
	// mapping. It bounds how long a rename or delete made by another
	// mount stays invisible here.
	EntryTimeout time.Duration
	// NegativeTimeout is how long the kernel may cache "no such name".
	// It bounds how long a file created by another mount stays
	// invisible here.
	NegativeTimeout time.Duration
	// AllowOther lets users other than the one who mounted use the
	// mount (FUSE's allow_other). Permissions are still checked by the
	// kernel (default_permissions) against the files' modes and owners.
	AllowOther bool
	// ReadOnly mounts read-only: the kernel refuses every change with
	// EROFS.
	ReadOnly bool
	// Debug logs every FUSE request and reply at debug level.
	Debug bool
	// FsName is the "device" shown by mount and df; default "shoal".
	FsName string
	// UnmountTimeout bounds how long Unmount waits for the kernel to
	// release a lazily detached mount (one still in use) before it
	// aborts the FUSE connection.
	UnmountTimeout time.Duration
	// MaxWrite is the largest read or write request the kernel sends.
	MaxWrite int
	// SyncUnlink makes every unlink wait for the manager. By default an
	// unlink of a file not open here returns once queued, and the queue
	// goes to the manager in batches (see unlinker in unlink.go).
	SyncUnlink bool
	// Log receives the mount's log lines; nil discards them.
	Log *logrus.Entry
}

// DefaultOptions are one-second kernel caches: short enough for
// close-to-open consistency between mounts to be visible at human speed,
// long enough that a shell walking a tree does not ask the manager for
// every path component twice.
func DefaultOptions() Options {
	return Options{
		AttrTimeout:     time.Second,
		EntryTimeout:    time.Second,
		NegativeTimeout: time.Second,
		FsName:          "shoal",
		UnmountTimeout:  10 * time.Second,
		MaxWrite:        1 << 20,
	}
}

// Validate checks the options, naming the field and its bound.
func (o Options) Validate() error {
	switch {
	case o.AttrTimeout < 0:
		return fmt.Errorf("fuse: AttrTimeout = %v, want >= 0", o.AttrTimeout)
	case o.EntryTimeout < 0:
		return fmt.Errorf("fuse: EntryTimeout = %v, want >= 0", o.EntryTimeout)
	case o.NegativeTimeout < 0:
		return fmt.Errorf("fuse: NegativeTimeout = %v, want >= 0", o.NegativeTimeout)
	case o.UnmountTimeout < 0:
		return fmt.Errorf("fuse: UnmountTimeout = %v, want >= 0", o.UnmountTimeout)
	case o.MaxWrite != 0 && (o.MaxWrite < 4096 || o.MaxWrite > 1<<20):
		return fmt.Errorf("fuse: MaxWrite = %d, want 0 (default) or 4096..1MiB", o.MaxWrite)
	}
	return nil
}

// blksize is the st_blksize files report, the "preferred I/O size" that
// cp, cat and stdio size their buffers by: the largest request the kernel
// sends, so that each of their writes is one FUSE request, not eight
// (coreutils reads and writes 128 KiB at a time otherwise). CephFS
// reports its object size the same way, NFS its wsize. 0 (go-fuse's
// default MaxWrite): 128 KiB.
func (o Options) blksize() uint32 {
	if o.MaxWrite == 0 {
		return 128 << 10
	}
	return uint32(o.MaxWrite)
}

func (o Options) logger() *logrus.Entry {
	if o.Log != nil {
		return o.Log
	}
	l := logrus.New()
	l.Out = io.Discard
	return logrus.NewEntry(l)
}

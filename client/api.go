package client

// This file holds the types of the contract between client/ and its users
// (fuse/, cmd/, internal/cluster, tests). The methods are in client.go
// (New, Close), namespace.go (by inode), file.go, writer.go and reader.go
// (Open and *File), paths.go (by path) and admin.go (Status, Fsck,
// Decommission). Every method that talks to the cluster takes ctx first
// and returns errors that wrap a syscall.Errno (ENOENT, EEXIST, ENOTEMPTY,
// ENOTDIR, EISDIR, EINVAL, ENAMETOOLONG, ENOSPC, EIO, ...), so errors.Is
// works against both the errno and io/fs's ErrNotExist/ErrExist; the one
// exception is a cancelled ctx, which comes back as context.Canceled.

import (
	"time"

	"github.com/sirupsen/logrus"
)

// Ino is a manager inode number. The root directory is RootIno.
type Ino uint64

// RootIno is the root directory's inode number.
const RootIno Ino = 1

// Config configures a Client.
type Config struct {
	// Manager is the manager's gRPC address, host:port.
	Manager string
	// RPCTimeout bounds one attempt of one RPC.
	RPCTimeout time.Duration
	// OpTimeout bounds an operation including its retries; past it the
	// operation fails with an error wrapping syscall.EIO.
	OpTimeout time.Duration
	// WriteBuffer is the memory budget, across all open files, for data
	// written but not yet sealed on chunkservers. Past it, writes flush.
	WriteBuffer int64
	// ReadAhead is how far ahead of a sequential reader data is fetched.
	ReadAhead int64
	// InlineMax: a file whose chunk 0 holds at most this many bytes when
	// written out keeps them in the manager's records instead of on
	// chunkservers (at most MaxInline; 0, the zero value, never).
	// DefaultConfig sets DefaultInlineMax.
	InlineMax int64
	// LocalReads reads the replicas of chunkservers on this host
	// straight from their files, with descriptors the chunkserver hands
	// over a Unix socket, instead of through TCP (localread.go). Zero
	// value: off; DefaultConfig turns it on.
	LocalReads bool
	// Log receives the client's log lines; nil discards them.
	Log *logrus.Entry
}

// Attr is a file's attributes.
type Attr struct {
	Ino       Ino
	Mode      uint32 // type bits and permissions, as in struct stat
	Nlink     uint32
	UID, GID  uint32
	Size      uint64
	Atime     time.Time
	Mtime     time.Time
	Ctime     time.Time
	Target    string // symlink target
	ChunkSize uint64
	Rdev      uint32
}

// IsDir reports whether a is a directory.
func (a Attr) IsDir() bool { return a.Mode&0o170000 == 0o040000 }

// SetAttr says which attributes to change: a nil field is left alone.
type SetAttr struct {
	Mode  *uint32 // permission bits
	UID   *uint32
	GID   *uint32
	Size  *uint64 // truncate or extend
	Atime *time.Time
	Mtime *time.Time
}

// CreateOptions describe a new inode.
type CreateOptions struct {
	Mode      uint32 // type bits (S_IFREG if none) and permissions
	UID, GID  uint32
	Rdev      uint32
	Exclusive bool   // fail with EEXIST if the name exists (O_EXCL)
	ChunkSize uint64 // 0: the manager's default
	// Allocate asks the manager to allocate the first chunk of a regular
	// file the call makes, along with it: OpenCreated of the Entry then
	// writes that chunk out without asking the manager for it. Ask only
	// when the file is about to be opened with OpenCreated and written.
	Allocate bool
}

// Entry is a name that Create, Mkdir, Symlink or Link made: the attributes
// of the inode it names and, when the manager reported them, those of its
// directory after the change.
type Entry struct {
	Attr
	// Parent is the directory's attributes right after the change, nil
	// when unknown: when a retry found the name made by an attempt whose
	// reply was lost.
	Parent *Attr

	first *firstChunk // chunk 0's allocation (CreateOptions.Allocate), or nil
}

// Removal is what Unlink or Rmdir did.
type Removal struct {
	Ino     Ino  // the inode that lost a link; 0 if a retry found the name gone
	Removed bool // whether that inode is gone for good
	Parent  *Attr
}

// Renaming is what Rename did.
type Renaming struct {
	Replaced        Ino  // the inode the new name referred to, if any
	ReplacedRemoved bool // whether that inode is gone for good
	// The directories' attributes right after the change (the same for a
	// rename within one directory); nil when unknown, as for Entry.Parent.
	OldParent, NewParent *Attr
}

// DirEntry is one directory entry. Attr is set by ReadDirPlus.
type DirEntry struct {
	Name string
	Ino  Ino
	Mode uint32
	Attr *Attr
}

// StatFS is the cluster's capacity, for df.
type StatFS struct {
	CapacityBytes, UsedBytes, FreeBytes uint64
	Files                               uint64
	NameMax                             uint32
}

// Progress is called with the bytes done so far and the total (-1 if
// unknown) by Put and Get. It may be nil.
type Progress func(done, total int64)

// NodeStatus is one chunkserver in a StatusReport.
type NodeStatus struct {
	ID            string    `json:"id"`
	Addr          string    `json:"addr"`
	Rack          string    `json:"rack"`
	State         string    `json:"state"` // live, dead, draining, drained
	Chunks        uint64    `json:"chunks"`
	UsedBytes     uint64    `json:"used_bytes"`
	CapacityBytes uint64    `json:"capacity_bytes"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
}

// HealerStatus is the healer's progress in a StatusReport.
type HealerStatus struct {
	Queued      uint64  `json:"queued"`
	Copying     uint64  `json:"copying"`
	Done        uint64  `json:"done"`
	Failed      uint64  `json:"failed"`
	Deleted     uint64  `json:"deleted"`
	BytesPerSec float64 `json:"bytes_per_sec"`
}

// StatusReport is `shoal status --json`.
type StatusReport struct {
	Nodes           []NodeStatus `json:"nodes"`
	Files           uint64       `json:"files"`
	Chunks          uint64       `json:"chunks"`
	UnderReplicated uint64       `json:"under_replicated"`
	OverReplicated  uint64       `json:"over_replicated"`
	Missing         uint64       `json:"missing"`
	Replication     uint32       `json:"replication"`
	SafeMode        bool         `json:"safe_mode"`
	Healer          HealerStatus `json:"healer"`
}

// FsckProblem is one unhealthy chunk in an FsckReport.
type FsckProblem struct {
	Path         string `json:"path"`
	ChunkID      uint64 `json:"chunk_id"`
	Version      uint64 `json:"version"`
	State        string `json:"state"` // under_replicated, over_replicated, missing, corrupt
	LiveReplicas uint32 `json:"live_replicas"`
	Wanted       uint32 `json:"wanted"`
}

// FsckReport is `shoal fsck --json`.
type FsckReport struct {
	Files           uint64        `json:"files"`
	Chunks          uint64        `json:"chunks"`
	Healthy         uint64        `json:"healthy"`
	UnderReplicated uint64        `json:"under_replicated"`
	OverReplicated  uint64        `json:"over_replicated"`
	Missing         uint64        `json:"missing"`
	Corrupt         uint64        `json:"corrupt"`
	Problems        []FsckProblem `json:"problems"`
}

// OK reports whether every chunk is healthy.
func (r FsckReport) OK() bool {
	return r.UnderReplicated == 0 && r.OverReplicated == 0 && r.Missing == 0 && r.Corrupt == 0
}

package metadata

import "time"

// Ino is an inode number. Numbers are never reused. The root directory is
// RootIno.
type Ino uint64

// RootIno is the root directory's inode number.
const RootIno Ino = 1

// ChunkID names a chunk; a replica is named by (ChunkID, version). Ids are
// allocated monotonically and never reused.
type ChunkID uint64

// Unix file type bits, as in struct stat's st_mode.
const (
	ModeType    uint32 = 0o170000
	ModeDir     uint32 = 0o040000
	ModeRegular uint32 = 0o100000
	ModeSymlink uint32 = 0o120000
	ModePerm    uint32 = 0o7777 // permission, setuid, setgid and sticky bits
)

// Limits enforced on every request.
const (
	// NameMax is the longest name, in bytes.
	NameMax = 255
	// MaxFileSize bounds file sizes and offsets (2^60 bytes).
	MaxFileSize = uint64(1) << 60
	// MinChunkSize and MaxChunkSize bound a file's chunk size.
	MinChunkSize = 4 << 10
	MaxChunkSize = 1 << 30
	// MaxSymlinkTarget bounds a symlink target (PATH_MAX).
	MaxSymlinkTarget = 4096
)

// Attr is an inode's attributes. Times are nanoseconds since the Unix epoch.
type Attr struct {
	Ino       Ino
	Mode      uint32 // type bits and permissions
	Nlink     uint32
	UID, GID  uint32
	Size      uint64
	Atime     int64
	Mtime     int64
	Ctime     int64
	Target    string // symlink target
	ChunkSize uint64 // regular files: the chunk size the file was created with
	Rdev      uint32
	// Parent is a directory's parent (the root's is itself); 0 for other
	// types, which may have several parents. It lets Rename find loops
	// and Fsck name paths.
	Parent Ino
}

// IsDir reports whether a is a directory.
func (a Attr) IsDir() bool { return a.Mode&ModeType == ModeDir }

// IsRegular reports whether a is a regular file.
func (a Attr) IsRegular() bool { return a.Mode&ModeType == ModeRegular }

// SetAttrMask bits say which SetAttrArgs fields to apply. The values are
// the wire protocol's.
const (
	SetMode  uint32 = 1
	SetUID   uint32 = 2
	SetGID   uint32 = 4
	SetSize  uint32 = 8
	SetAtime uint32 = 16
	SetMtime uint32 = 32
)

// SetAttrArgs describes an attribute change. Mask says which fields apply.
type SetAttrArgs struct {
	Mask         uint32
	Mode         uint32 // permission bits only; the type is kept
	UID, GID     uint32
	Size         uint64
	Atime, Mtime int64
}

// apply sets the mode, owner and times args asks for in a (not the size,
// which needs the layout).
func (args SetAttrArgs) apply(a *Attr) {
	if args.Mask&SetMode != 0 {
		a.Mode = a.Mode&ModeType | args.Mode&ModePerm
	}
	if args.Mask&SetUID != 0 {
		a.UID = args.UID
	}
	if args.Mask&SetGID != 0 {
		a.GID = args.GID
	}
	if args.Mask&SetAtime != 0 {
		a.Atime = args.Atime
	}
	if args.Mask&SetMtime != 0 {
		a.Mtime = args.Mtime
	}
}

// CreateArgs describes a new inode.
type CreateArgs struct {
	Mode      uint32 // type bits (regular if none) and permissions
	UID, GID  uint32
	Target    string // symlinks
	Rdev      uint32
	ChunkSize uint64 // regular files; 0 means Config.ChunkSize
	// Exclusive fails with ErrExists if the name exists. Without it an
	// existing regular file is returned when a regular file is asked for.
	Exclusive bool
	// Allocate asks for chunk 0 of a regular file the call makes to be
	// allocated with it (CreateResult.First).
	Allocate bool
}

// Rename flags, as in renameat2(2).
const (
	RenameNoReplace uint32 = 1
	RenameExchange  uint32 = 2
)

// DirEntry is one directory entry. Attr is filled only when asked for.
type DirEntry struct {
	Name string
	Ino  Ino
	Mode uint32 // type bits only
	Attr *Attr
}

// FSStats is the filesystem summary statfs(2) reports.
type FSStats struct {
	Capacity, Used, Free uint64 // bytes, over live chunkservers
	Inodes               uint64
	NameMax              uint32
	Replication          uint32
}

// Location is a chunkserver holding a replica.
type Location struct {
	NodeID string
	Addr   string
}

// ChunkLayout is one chunk of a file with the live replicas of its current
// version, best first.
type ChunkLayout struct {
	Index    uint64
	Chunk    ChunkID
	Version  uint64
	Length   uint64
	Summary  uint32
	Replicas []Location
	// Inline holds chunk 0 of a small file kept in the manager's records
	// (Chunk and Version are 0, Length is len(Inline), no replicas).
	Inline []byte
}

// Allocation is the answer to AllocateChunk.
type Allocation struct {
	Chunk       ChunkID
	Version     uint64
	BaseVersion uint64 // 0 for a new chunk
	BaseLength  uint64
	Targets     []Location
	MinReplicas int
}

// ChunkCommit is a sealed chunk version to record in a file's layout.
type ChunkCommit struct {
	Index   uint64
	Chunk   ChunkID
	Version uint64
	Length  uint64
	Summary uint32
	Nodes   []string // nodes that acknowledged the sealed replica
	// Inline, for index 0 with Chunk and Version 0, is the chunk's whole
	// content, kept in the manager's records instead (a small file).
	// InlineBase is the CRC32C of the inline bytes it was built on (0 for
	// none): the commit fails with ErrStaleVersion if they changed since.
	Inline     []byte
	InlineBase uint32
}

// ReplicaReport is one replica a chunkserver reports.
type ReplicaReport struct {
	Chunk   ChunkID
	Version uint64
	Length  uint64
	Summary uint32
}

// RegisterArgs is a chunkserver's registration with its full report.
type RegisterArgs struct {
	NodeID   string // empty the first time
	Addr     string
	Rack     string
	Capacity uint64
	Used     uint64
	Chunks   []ReplicaReport
}

// HeartbeatArgs is a chunkserver's periodic report.
type HeartbeatArgs struct {
	NodeID   string
	Capacity uint64
	Used     uint64
	Added    []ReplicaReport
	Removed  []ReplicaReport
	Corrupt  []ReplicaReport
}

// HeartbeatReply tells a chunkserver what to do.
type HeartbeatReply struct {
	// Reregister asks for a Register with a full report: the manager does
	// not know the node, or has considered it dead.
	Reregister bool
	// Delete lists replicas to remove from disk.
	Delete []ReplicaReport
}

// NodeState is a chunkserver's state as the manager sees it.
type NodeState string

// Node states.
const (
	NodeLive     NodeState = "live"
	NodeDead     NodeState = "dead"
	NodeDraining NodeState = "draining" // decommissioned, still holding needed replicas
	NodeDrained  NodeState = "drained"  // decommissioned, nothing depends on it
)

// NodeInfo describes a chunkserver.
type NodeInfo struct {
	ID            string
	Addr          string
	Rack          string
	State         NodeState
	Chunks        int // replicas the manager knows on it
	Used          uint64
	Capacity      uint64
	LastHeartbeat time.Time // zero if not heard from since the manager started
}

// HealerStatus is the healer's progress, as the Status call shows it.
type HealerStatus struct {
	Queued, Copying, Done, Failed, Deleted uint64
	BytesPerSec                            float64
}

// Status is the cluster summary.
type Status struct {
	Nodes           []NodeInfo
	Files           uint64 // regular files
	Chunks          uint64
	UnderReplicated uint64
	Missing         uint64 // no live replica (includes Fsck's corrupt)
	OverReplicated  uint64
	SafeMode        bool
	Replication     int
	Healer          *HealerStatus // nil until SetHealerStatus
}

// Chunk health classes, as Fsck names them.
const (
	HealthOK      = "healthy"
	HealthUnder   = "under_replicated"
	HealthOver    = "over_replicated"
	HealthMissing = "missing"
	HealthCorrupt = "corrupt"
)

// FsckProblem is one chunk that is not healthy.
type FsckProblem struct {
	Path    string
	Chunk   ChunkID
	Version uint64
	State   string
	Live    int
	Wanted  int
}

// FsckReport is the result of Fsck.
type FsckReport struct {
	Files, Chunks                                     uint64
	Healthy, UnderReplicated, OverReplicated, Missing uint64
	Corrupt                                           uint64
	Problems                                          []FsckProblem
}

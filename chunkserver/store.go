package chunkserver

import (
	"context"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/internal/localread"
)

// The replica vocabulary lives in the leaf package chunk, so that
// chunkserver/diskstore can implement Store (naming these types) while
// chunkserver opens a diskstore; these aliases are the names to use.
type (
	// ChunkID names a chunk; see chunk.ID.
	ChunkID = chunk.ID
	// ChunkInfo describes a sealed replica; see chunk.Info.
	ChunkInfo = chunk.Info
	// Writer builds one replica; see chunk.Writer for its contract.
	Writer = chunk.Writer
)

// Error markers returned (wrapped) by a Store; test with errors.Is.
var (
	ErrNotFound = chunk.ErrNotFound
	ErrCorrupt  = chunk.ErrCorrupt
	ErrNoSpace  = chunk.ErrNoSpace
	ErrExists   = chunk.ErrExists
	ErrInvalid  = chunk.ErrInvalid
)

const (
	// BlockSize is the checksum block size (64 KiB).
	BlockSize = chunk.BlockSize
	// MaxChunkSize is the hard cap on a replica's length (1 GiB).
	MaxChunkSize = chunk.MaxSize
)

// Store holds chunk replicas. It is what the chunkserver needs from its
// disk, and nothing more; chunkserver/diskstore implements it and
// chunkserver/storetest.Run checks an implementation against this
// contract.
//
// A replica is named by (id, version) and is immutable once sealed;
// versions v and v+1 of one chunk coexist while v+1 is built from v. Every
// method is safe for concurrent use. Methods that take a ctx may return
// early with ctx.Err() when it ends.
//
// Writes go through a Writer rather than a Put(io.Reader): the write
// stream carries (offset, data) ranges, a new version is built from a base
// plus patches at arbitrary offsets, and the chunkserver decides to seal
// or discard only when the stream ends cleanly or breaks; a Writer says
// all of that directly, where a reader would need a pipe and a goroutine.
type Store interface {
	// Create starts building replica (id, version). Its initial content
	// is the local replica (id, baseVersion) truncated or zero-extended
	// to baseLength; baseVersion 0 means no base, so the replica starts
	// as baseLength zero bytes. The base is verified while it is copied,
	// which a store may do here or later (diskstore copies it in as the
	// writes move past it, and the rest at Commit): a base that fails its
	// checksums fails Create, a WriteAt or Commit with ErrCorrupt. Base
	// bytes that writes replace need not be copied, nor verified.
	//
	// Fails marked ErrExists if (id, version) is sealed or being built,
	// ErrNotFound if the base is missing, ErrInvalid for version 0,
	// baseVersion >= version or baseLength outside [0, MaxChunkSize],
	// ErrNoSpace if baseLength does not fit. The caller must Commit or
	// Abort the Writer.
	Create(ctx context.Context, id ChunkID, version, baseVersion uint64, baseLength int64) (Writer, error)

	// ReadAt reads data of replica (id, version) at off into p, as
	// io.ReaderAt does (n < len(p) only with an error; io.EOF at the end).
	// Every block it touches is verified against its stored checksum; a
	// mismatch fails with an error marked ErrCorrupt. A missing replica
	// fails marked ErrNotFound.
	ReadAt(ctx context.Context, id ChunkID, version uint64, p []byte, off int64) (int, error)

	// Checksums returns the stored CRC32C of blocks [first, first+count)
	// of replica (id, version), clipped to its last block. The values are
	// the ones written at Commit, not recomputed: ReadAt verifies data
	// against them and readers further down can too.
	Checksums(ctx context.Context, id ChunkID, version uint64, first, count int) ([]uint32, error)

	// Stat describes replica (id, version): ErrNotFound if it is missing,
	// ErrCorrupt if its metadata does not parse. It does not read data.
	Stat(ctx context.Context, id ChunkID, version uint64) (ChunkInfo, error)

	// Sync makes sealed replica (id, version) durable: after it returns
	// nil the replica survives a crash of the machine, not only of the
	// process. A Writer's Commit seals without it (the replica is in the
	// store's files, perhaps not yet on its disk). ErrNotFound if the
	// replica is missing.
	Sync(ctx context.Context, id ChunkID, version uint64) error

	// Delete removes replica (id, version); ErrNotFound if it is missing.
	// Readers that already started may finish.
	Delete(ctx context.Context, id ChunkID, version uint64) error

	// Walk calls fn for every sealed replica, in no particular order.
	// A replica whose metadata cannot be read is passed with err marked
	// ErrCorrupt and an info holding only ID and Version. Replicas sealed
	// or deleted during the walk may or may not be seen. Walk stops at
	// and returns the first error fn returns.
	Walk(ctx context.Context, fn func(info ChunkInfo, err error) error) error

	// Usage reports the bytes the store offers and the bytes it uses
	// (sealed replicas plus space reserved by writers in progress).
	Usage(ctx context.Context) (capacity, used int64, err error)

	// Close releases the store. Writers still open fail at Commit.
	// Close may be called more than once.
	Close() error
}

// LocalOpener is a Store that can hand a replica's file to a reader on
// the same host (short-circuit reads, package localread). A store
// without it (a test's wrapper) is read over the network only.
type LocalOpener interface {
	// OpenLocal opens sealed replica (id, version), failing as Stat
	// does. The caller closes the files.
	OpenLocal(ctx context.Context, id ChunkID, version uint64) (*localread.Replica, error)
}

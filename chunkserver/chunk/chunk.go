// Package chunk is the vocabulary shared by everything that stores, sends
// or verifies chunk replicas: the chunk id, a replica's description, the
// error markers, the 64 KiB checksum block and the replica summary, and
// the Writer a store hands out to build a replica.
//
// It is a leaf package so that chunkserver (which declares the Store it
// consumes and also opens the disk store) and chunkserver/diskstore (which
// implements it) can both name these types without an import cycle, and
// so that the client can verify blocks and summaries without importing the
// chunkserver. chunkserver re-exports every name here under its own
// (chunkserver.ChunkID, chunkserver.ErrCorrupt, ...); use those.
package chunk

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// ID names a chunk. The manager allocates ids; a chunk has one id for its
// whole life and a new version for every rewrite.
type ID uint64

// Info describes one sealed replica.
type Info struct {
	ID      ID
	Version uint64
	// Length is the number of data bytes.
	Length int64
	// Summary is the replica's checksum summary (see Summary).
	Summary uint32
}

const (
	// BlockSize is the checksum block: every replica carries one CRC32C
	// per BlockSize bytes of data (the last block may be short).
	BlockSize = 64 << 10
	// MaxSize is the hard cap on a replica's length.
	MaxSize = 1 << 30
)

// Error markers. Stores wrap them with context (fmt.Errorf("...: %w",
// ErrCorrupt)); test with errors.Is, never by comparing messages.
var (
	// ErrNotFound: the replica (id, version) does not exist.
	ErrNotFound = errors.New("chunk replica not found")
	// ErrCorrupt: stored data or metadata failed its checksum or does not
	// parse.
	ErrCorrupt = errors.New("chunk replica corrupt")
	// ErrNoSpace: the disk is full or the configured capacity is used up.
	ErrNoSpace = errors.New("no space for chunk replica")
	// ErrExists: the replica already exists, or is being built.
	ErrExists = errors.New("chunk replica already exists")
	// ErrInvalid: a malformed request (an offset past MaxSize, a negative
	// length, version 0, ...).
	ErrInvalid = errors.New("invalid chunk request")
)

// Writer builds one replica. It is obtained from a store's Create and is
// used by one goroutine at a time. Nothing is visible to readers until
// Commit returns; a Writer that is neither committed nor aborted leaks its
// temporary file until the store's next open, so callers `defer w.Abort()`.
type Writer interface {
	// WriteAt stores p at data offset off, as io.WriterAt does. Writes
	// may come in any order and overlap; the replica's length is the
	// largest end written (or the base length, whichever is larger), and
	// bytes never written read as zero. Fails marked ErrInvalid past
	// MaxSize and marked ErrNoSpace when space runs out. As io.WriterAt,
	// it must not retain p: the server reuses the buffer.
	WriteAt(p []byte, off int64) (int, error)
	// Commit seals the replica durably (data, checksums and name are on
	// stable storage when it returns) and describes it. After a crash the
	// replica is either wholly there or absent. Commit may be called once.
	Commit(ctx context.Context) (Info, error)
	// Abort discards the replica being built. It is idempotent and a
	// no-op after a successful Commit.
	Abort() error
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC32C (Castagnoli) of p: the per-block checksum.
func Checksum(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// UpdateChecksum extends crc, a running CRC32C, with p.
func UpdateChecksum(crc uint32, p []byte) uint32 { return crc32.Update(crc, castagnoli, p) }

// Summary is the replica checksum summary: the CRC32C of the block
// checksums, each as 4 bytes little-endian, in block order. Identical
// replicas have identical summaries; an empty replica's summary is 0.
func Summary(crcs []uint32) uint32 {
	var b [4]byte
	crc := uint32(0)
	for _, c := range crcs {
		binary.LittleEndian.PutUint32(b[:], c)
		crc = crc32.Update(crc, castagnoli, b[:])
	}
	return crc
}

// Blocks is the number of checksum blocks in length bytes.
func Blocks(length int64) int { return int((length + BlockSize - 1) / BlockSize) }

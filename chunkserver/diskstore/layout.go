package diskstore

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoalfs/shoal/chunkserver/chunk"
)

// The on-disk layout under the store's root directory, all of it here:
//
//	LOCK                                   flock(2)ed while a Store has the root open
//	chunks/                                every replica, fanned out by chunk id:
//	chunks/HH/MM/                          HH = id's third byte, MM = its second byte
//	                                       (hex): 256 consecutive ids share a leaf
//	                                       directory, made (and its parent fsynced) on
//	                                       first use; ids past 2^24 wrap around
//	chunks/HH/MM/<id>-<version>.chunk      a sealed replica: id and version as 16 hex
//	                                       digits each; the format is in format.go
//	chunks/HH/MM/.tmp-<id>-<version>-*     a replica being built, in the directory its
//	                                       final name will be in, so the rename that
//	                                       seals it never crosses a filesystem; any left
//	                                       at Open are debris of a crash and are removed
//
// The manager names replicas by (id, version), and so does a file name:
// Stat and ReadAt find a replica without any index, and Walk rebuilds the
// full report from directory listings plus each file's header.
const (
	lockName   = "LOCK"
	chunksDir  = "chunks"
	chunkExt   = ".chunk"
	tempPrefix = ".tmp-"
)

// fanout returns the two directory levels for id. The manager hands out
// ids in sequence, so consecutive ids share a leaf: a leaf directory is
// made (with an fsync of its parent) once per 256 chunks. Spreading
// consecutive ids over leaves instead made every new chunk of a fresh
// store pay for a mkdir and a directory fsync, which doubled the cost of
// sealing a small file.
func fanout(id chunk.ID) (string, string) {
	return fmt.Sprintf("%02x", (uint64(id)>>16)&0xff), fmt.Sprintf("%02x", (uint64(id)>>8)&0xff)
}

// replicaDir is the directory holding every version of chunk id.
func replicaDir(root string, id chunk.ID) string {
	a, b := fanout(id)
	return filepath.Join(root, chunksDir, a, b)
}

// replicaName is the file name of sealed replica (id, version).
func replicaName(id chunk.ID, version uint64) string {
	return fmt.Sprintf("%016x-%016x%s", uint64(id), version, chunkExt)
}

// ReplicaPath is the file that holds sealed replica (id, version) in a
// store rooted at root: for tools and tests that inspect or damage files.
func ReplicaPath(root string, id chunk.ID, version uint64) string {
	return filepath.Join(replicaDir(root, id), replicaName(id, version))
}

// tempPattern is the os.CreateTemp pattern for building (id, version).
func tempPattern(id chunk.ID, version uint64) string {
	return fmt.Sprintf("%s%016x-%016x-*", tempPrefix, uint64(id), version)
}

func isTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// parseReplicaName is the inverse of replicaName.
func parseReplicaName(name string) (chunk.ID, uint64, bool) {
	base, ok := strings.CutSuffix(name, chunkExt)
	if !ok || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	id, err1 := strconv.ParseUint(base[:16], 16, 64)
	v, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return chunk.ID(id), v, true
}

// isFanoutName reports whether a directory name is one fan-out level.
func isFanoutName(name string) bool {
	if len(name) != 2 {
		return false
	}
	_, err := strconv.ParseUint(name, 16, 8)
	return err == nil
}

// Replica names one sealed replica file.
type Replica struct {
	ID      chunk.ID
	Version uint64
}

// ListReplicas lists the sealed replicas under root from file names alone,
// without opening (or locking) the store: for tools and tests that check
// what is on a disk, even while a chunkserver has it open.
func ListReplicas(root string) ([]Replica, error) {
	var out []Replica
	err := filepath.WalkDir(filepath.Join(root, chunksDir), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a store that has never sealed a replica
			}
			return err
		}
		if id, v, ok := parseReplicaName(d.Name()); ok && !d.IsDir() {
			out = append(out, Replica{ID: id, Version: v})
		}
		return nil
	})
	return out, err
}

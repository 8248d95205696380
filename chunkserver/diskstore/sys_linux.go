package diskstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockRoot takes an exclusive, non-blocking flock on path, so that two
// chunkservers never share a data directory (the second one's Open would
// sweep the first one's temporary files).
func lockRoot(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is locked: another chunkserver uses this directory", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// fsSize is the size in bytes of the filesystem holding dir.
func fsSize(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Blocks) * int64(st.Bsize), nil
}

// isNoSpace reports whether err is the filesystem running out of room.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// openDirect opens path with O_DIRECT (mode: os.O_RDONLY or
// os.O_WRONLY), or returns nil if the filesystem does not support it
// (tmpfs before Linux 6.6, some FUSE and network filesystems): I/O then
// goes through the page cache only.
func openDirect(path string, mode int) *os.File {
	f, err := os.OpenFile(path, mode|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

// prefetchMax is the largest replica file open reads ahead whole.
const prefetchMax = 256 << 10

// prefetch asks the kernel to read [0, n) of f into the page cache now.
// Errors are ignored: it is only a hint.
func prefetch(f *os.File, n int64) {
	_ = unix.Fadvise(int(f.Fd()), 0, n, unix.FADV_WILLNEED)
}

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk without waiting, so the fsync at Commit has little left to do
// (RocksDB's bytes_per_sync). Errors are ignored: it is only a hint.
func startWriteback(f *os.File, off, n int64) {
	_ = syscall.SyncFileRange(int(f.Fd()), off, n, 0x2 /* SYNC_FILE_RANGE_WRITE */)
}

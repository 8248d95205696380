package metadata

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"
)

// Config configures a Manager.
type Config struct {
	// Dir is the Badger directory. Required unless InMemory.
	Dir string
	// InMemory keeps Badger in memory (tests only: nothing survives Close).
	InMemory bool
	// Replication is the number of replicas wanted per chunk, 1..16.
	Replication int
	// MinReplicas is the number of sealed replicas a write needs,
	// 1..Replication; 0 means min(2, Replication).
	MinReplicas int
	// ChunkSize is the default chunk size for new files, MinChunkSize..MaxChunkSize.
	ChunkSize int64
	// DeadAfter is how long a chunkserver may stay silent before it is
	// dead; it is also how long safe mode lasts at most after Open.
	DeadAfter time.Duration
	// OrphanTTL bounds how long a file unlinked while open (keepOpen)
	// is kept waiting for its ReleaseInode: a mount that dies never sends
	// it. Past it the inode and its data are removed. Default 24h.
	OrphanTTL time.Duration
	// SyncWrites fsyncs Badger's log before every change is acknowledged.
	// When false (the default), a change is acknowledged once it is in
	// the log (memory-mapped files, so it survives the manager's process
	// being killed), and the log is fsynced within SyncInterval, and at
	// once by Sync (a client's fsync). See docs/DURABILITY.md.
	SyncWrites bool
	// SyncInterval bounds how long an acknowledged change may stay off
	// the disk when SyncWrites is false: what a crash of the manager's
	// machine (not its process) can lose. Default 1s.
	SyncInterval time.Duration
	// Log receives the manager's log lines (and Badger's, with
	// component=badger). Nil discards them.
	Log *logrus.Entry
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
}

// DefaultConfig returns the defaults: replication 3, min(2, Replication)
// replicas minimum, 64 MiB chunks, dead after 10s. Dir must still be set.
func DefaultConfig() Config {
	return Config{
		Replication:  3,
		ChunkSize:    64 << 20,
		DeadAfter:    10 * time.Second,
		OrphanTTL:    24 * time.Hour,
		SyncInterval: time.Second,
	}
}

// Validate checks cfg, naming the field and its bound on error.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" && !c.InMemory {
		errs = append(errs, errors.New("metadata: Config.Dir must be set (or InMemory)"))
	}
	if c.Replication < 1 || c.Replication > 16 {
		errs = append(errs, fmt.Errorf("metadata: Config.Replication %d out of range 1..16", c.Replication))
	}
	if c.MinReplicas < 0 || c.MinReplicas > c.Replication {
		errs = append(errs, fmt.Errorf("metadata: Config.MinReplicas %d out of range 0..Replication (%d)", c.MinReplicas, c.Replication))
	}
	if c.ChunkSize < MinChunkSize || c.ChunkSize > MaxChunkSize {
		errs = append(errs, fmt.Errorf("metadata: Config.ChunkSize %d out of range %d..%d", c.ChunkSize, MinChunkSize, MaxChunkSize))
	}
	if c.DeadAfter < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("metadata: Config.DeadAfter %v below 100ms", c.DeadAfter))
	}
	if c.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("metadata: Config.SyncInterval %v is negative", c.SyncInterval))
	}
	if c.OrphanTTL < 0 {
		errs = append(errs, fmt.Errorf("metadata: Config.OrphanTTL %v is negative", c.OrphanTTL))
	}
	return errors.Join(errs...)
}

// orphanTTL resolves the OrphanTTL default.
func (c Config) orphanTTL() time.Duration {
	if c.OrphanTTL > 0 {
		return c.OrphanTTL
	}
	return 24 * time.Hour
}

// syncInterval resolves the SyncInterval default.
func (c Config) syncInterval() time.Duration {
	if c.SyncInterval > 0 {
		return c.SyncInterval
	}
	return time.Second
}

// minReplicas resolves the MinReplicas default.
func (c Config) minReplicas() int {
	if c.MinReplicas > 0 {
		return c.MinReplicas
	}
	return min(2, c.Replication)
}

func (c Config) logger() *logrus.Entry {
	if c.Log != nil {
		return c.Log
	}
	l := logrus.New()
	l.Out = io.Discard
	return logrus.NewEntry(l)
}

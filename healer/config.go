package healer

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"
)

var (
	// ErrInvalidConfig marks every error returned by Config.Validate and by
	// New for a bad argument.
	ErrInvalidConfig = errors.New("invalid healer config")
	// ErrRunning is returned by Run when another Run of the same Healer has
	// not returned yet.
	ErrRunning = errors.New("healer already running")
)

// Config holds the healer's settings. Start from DefaultConfig.
type Config struct {
	// Interval is the period between passes. Kick forces a pass sooner,
	// and every finished copy kicks one. Default 1s.
	Interval time.Duration
	// MaxSlotsPerNode bounds the copies a node takes part in at once, as
	// the source (from[0]) or the target, in slots: a copy takes one slot
	// per SlotBytes (16 MiB) of its chunk, at least one. The default, 16,
	// is four 64 MiB chunks or sixteen small ones at a time.
	MaxSlotsPerNode int
	// MaxCopies bounds the concurrent copies overall. Default 64.
	MaxCopies int
	// BandwidthLimit is the total bytes per second copies may move; 0 means
	// unlimited. Each copy reserves its chunk's length before it starts,
	// so the long-run rate stays under the limit with a burst of one chunk.
	BandwidthLimit int64
	// PendingTimeout is how long a finished copy or an issued delete is
	// taken as done while the view does not show it yet (the manager
	// learns of both from heartbeats). After it, the healer plans the
	// chunk again as the view shows it. Default 30s.
	PendingTimeout time.Duration
	// Place chooses copy targets; nil means DefaultPlacer.
	Place Placer
	// Log receives the healer's log lines; nil means discard.
	Log *logrus.Entry
	// OnPass, if set, is called after each pass with its report, from the
	// Run goroutine (so it delays the next pass while it runs).
	OnPass func(Report)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Interval:        time.Second,
		MaxSlotsPerNode: 16,
		MaxCopies:       64,
		PendingTimeout:  30 * time.Second,
	}
}

// Validate reports the first field out of its bounds, wrapping
// ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("healer: Interval %v must be > 0: %w", c.Interval, ErrInvalidConfig)
	case c.MaxSlotsPerNode < 1:
		return fmt.Errorf("healer: MaxSlotsPerNode %d must be >= 1: %w", c.MaxSlotsPerNode, ErrInvalidConfig)
	case c.MaxCopies < 1:
		return fmt.Errorf("healer: MaxCopies %d must be >= 1: %w", c.MaxCopies, ErrInvalidConfig)
	case c.BandwidthLimit < 0:
		return fmt.Errorf("healer: BandwidthLimit %d must be >= 0: %w", c.BandwidthLimit, ErrInvalidConfig)
	case c.PendingTimeout <= 0:
		return fmt.Errorf("healer: PendingTimeout %v must be > 0: %w", c.PendingTimeout, ErrInvalidConfig)
	}
	return nil
}

func discardLog() *logrus.Entry {
	l := logrus.New()
	l.Out = io.Discard
	return logrus.NewEntry(l)
}

package chunkserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// Config configures a chunkserver. Start from DefaultConfig.
type Config struct {
	// Manager is the manager's gRPC address, host:port.
	Manager string
	// Advertise is the address the manager and peer chunkservers dial
	// this one on.
	Advertise string
	// Dir is the data directory: the replicas and the persisted node id.
	Dir  string
	Rack string
	// Capacity is the bytes offered to the cluster; 0 means the size of
	// the filesystem holding Dir. Writes past it fail with ErrNoSpace.
	Capacity int64
	// Heartbeat is the interval between heartbeats, unless the manager
	// asks for another at registration.
	Heartbeat time.Duration
	// ScrubInterval is the time between two scrubs (verifications of
	// every replica); 0 turns the scrubber off.
	ScrubInterval time.Duration
	// ScrubRate caps the scrubber's reading, in bytes per second; 0 is
	// no cap.
	ScrubRate int64
	// ReplicateWorkers is how many items of one ReplicateChunks call are
	// copied at once; 0 means 4.
	ReplicateWorkers int
	// WrapStore, if set, wraps the disk store before the server uses it:
	// tests inject faults with it (storetest.Faulty).
	WrapStore func(Store) Store
	// Log receives the chunkserver's log lines; nil discards them.
	Log *logrus.Entry
}

// DefaultConfig returns a Config with every default set; the caller
// still sets Manager, Advertise and Dir.
func DefaultConfig() Config {
	return Config{
		Heartbeat:        time.Second,
		ScrubInterval:    time.Hour,
		ScrubRate:        32 << 20,
		ReplicateWorkers: 4,
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	var err error
	switch {
	case c.Manager == "":
		err = errors.New("no manager address")
	case c.Advertise == "":
		err = errors.New("no advertise address")
	case c.Dir == "":
		err = errors.New("no data directory")
	case c.Capacity < 0:
		err = fmt.Errorf("negative capacity %d", c.Capacity)
	case c.Heartbeat <= 0:
		err = fmt.Errorf("heartbeat interval %v is not positive", c.Heartbeat)
	case c.ScrubInterval < 0:
		err = fmt.Errorf("negative scrub interval %v", c.ScrubInterval)
	case c.ScrubRate < 0:
		err = fmt.Errorf("negative scrub rate %d", c.ScrubRate)
	case c.ReplicateWorkers < 0:
		err = fmt.Errorf("negative replicate workers %d", c.ReplicateWorkers)
	}
	if err != nil {
		return fmt.Errorf("chunkserver config: %w", err)
	}
	return nil
}

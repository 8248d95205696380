package fuse

import (
	"sync"
	"time"
)

// newDir is what a mount knows of a directory it has just made: the
// manager made it empty, and every name made in it since through this
// mount. For a short while it answers the kernel's LOOKUP of any other
// name with "no such entry", without a round trip: tar makes a directory
// and then creates file after file in it, and before each create the
// kernel looks the new name up.
//
// Staleness: answers come from here for NegativeTimeout/2 after the
// mkdir's reply, and the kernel caches each such answer for
// NegativeTimeout; so a name another mount makes in the directory is seen
// here at most 1.5 x NegativeTimeout after the mkdir, against
// NegativeTimeout for the kernel's own negative cache. Names made here
// (create, mknod, mkdir, symlink, link, a rename into the directory, and
// names a LOOKUP found) are never answered from here: the kernel may drop
// their entries, and then they must be looked up for real.
type newDir struct {
	mu    sync.Mutex
	until time.Time       // answer from here before this; zero: never
	names map[string]bool // made or found here since the mkdir
}

// start records that the directory was made, empty, just now.
func (d *newDir) start(window time.Duration) {
	if window <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.until = time.Now().Add(window)
}

// absent reports whether name is known not to exist.
func (d *newDir) absent(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.until.IsZero() {
		return false
	}
	if !time.Now().Before(d.until) {
		d.until, d.names = time.Time{}, nil // the window is over for good
		return false
	}
	return !d.names[name]
}

// added records a name made or found in the directory through this mount.
func (d *newDir) added(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.until.IsZero() {
		return
	}
	if d.names == nil {
		d.names = make(map[string]bool)
	}
	d.names[name] = true
}

package diskstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Spare files.
//
// Creating a file is the most expensive step of writing a small replica:
// on this project's benchmark machine an ext4 create costs 200-600 µs
// (a rename 20-30 µs, a 4 KiB write a few), and a replicated small file
// is created on three chunkservers. So the store keeps a few empty files
// made ahead of time in spareDir, by one goroutine, and a new replica
// takes one (rename moves it into its fan-out directory at Commit) instead
// of creating a file while the client waits. The work is the same; it is
// no longer in the write's path. When none is ready, Create makes its
// temporary file itself, as before.
//
// Spare files are empty and unnamed as far as the store is concerned:
// Open removes any a crash left behind.

// spareDir holds the spare files, under the store's root.
const spareDir = "spare"

// spareCount is how many spare files are kept ready: enough for a burst
// of small writes while the goroutine catches up.
const spareCount = 32

// spares owns the spare files and the goroutine that makes them.
type spares struct {
	dir   string
	ready chan *os.File
	stop  chan struct{}
	done  chan struct{}
}

// startSpares empties dir (creating it) and starts filling it.
func startSpares(dir string, s *Store) (*spares, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	sp := &spares{dir: dir, ready: make(chan *os.File, spareCount), stop: make(chan struct{}), done: make(chan struct{})}
	go sp.fill(s)
	return sp, nil
}

func (sp *spares) fill(s *Store) {
	defer close(sp.done)
	for {
		f, err := os.CreateTemp(sp.dir, "spare-*")
		if err != nil {
			// A full or failing disk: Create makes its own files (and
			// reports the error) meanwhile. Try again later.
			s.log.WithError(err).Debug("spare file")
			t := time.NewTimer(time.Second)
			select {
			case <-t.C:
				continue
			case <-sp.stop:
				t.Stop()
				return
			}
		}
		select {
		case sp.ready <- f:
		case <-sp.stop:
			discardSpare(f)
			return
		}
	}
}

// take returns a spare file, or nil if none is ready.
func (sp *spares) take() *os.File {
	select {
	case f := <-sp.ready:
		return f
	default:
		return nil
	}
}

// close stops the goroutine and removes the spare files.
func (sp *spares) close() {
	close(sp.stop)
	<-sp.done
	for {
		select {
		case f := <-sp.ready:
			discardSpare(f)
		default:
			return
		}
	}
}

func discardSpare(f *os.File) {
	f.Close()
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return // Open removes it next time
	}
}

// spareRoot is where a store rooted at root keeps its spare files.
func spareRoot(root string) string { return filepath.Join(root, spareDir) }

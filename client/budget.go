package client

import (
	"context"
	"sync"
)

// budget is the Client's write buffer: the bytes written by WriteAt and
// not yet sealed and committed, across all files. A writer that would
// take it over the limit waits for sealing chunks to finish; if nothing
// is sealing, it first seals the open chunks of every file. The limit is
// soft: concurrent writers may pass it by one write each, and a write
// proceeds if nothing at all is left to wait for.
type budget struct {
	limit int64

	mu      sync.Mutex    // guards the fields below
	used    int64         // bytes held by chunk generations, open or sealing
	sealing int64         // of used, bytes in sealed generations (on their way out)
	changed chan struct{} // closed and replaced whenever used or sealing drops
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, changed: make(chan struct{})}
}

// add charges n bytes (n may be negative) to an open generation.
func (b *budget) add(n int64) {
	b.mu.Lock()
	b.used += n
	if n < 0 {
		b.notifyLocked()
	}
	b.mu.Unlock()
}

// seal moves n charged bytes from open to sealing.
func (b *budget) seal(n int64) {
	b.mu.Lock()
	b.sealing += n
	b.mu.Unlock()
}

// release returns the n bytes of a finished generation; sealed says
// whether they were counted as sealing.
func (b *budget) release(n int64, sealed bool) {
	b.mu.Lock()
	b.used -= n
	if sealed {
		b.sealing -= n
	}
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *budget) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *budget) usage() (used, sealing int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.sealing
}

// reserve waits until n more bytes fit. sealAll is called (at most once)
// when they do not fit and nothing is sealing.
func (b *budget) reserve(ctx context.Context, n int64, sealAll func()) error {
	flushed := false
	for {
		b.mu.Lock()
		if b.used+n <= b.limit || b.used == 0 {
			b.mu.Unlock()
			return nil
		}
		if b.sealing == 0 {
			if flushed {
				// Sealing everything left nothing to wait for (the
				// sealed chunks finished already, or a single write
				// is bigger than the budget): go ahead.
				b.mu.Unlock()
				return nil
			}
			b.mu.Unlock()
			sealAll()
			flushed = true
			continue
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctxErr(ctx)
		}
	}
}

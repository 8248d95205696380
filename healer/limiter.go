package healer

import (
	"context"
	"sync"
	"time"
)

// limiter spreads copies over time so that the bytes they move stay under
// a rate. Each copy reserves its whole length before it starts: it starts
// when the copies reserved before it have "used up" their time at the
// rate. So the first copy starts at once (a burst of one chunk) and over
// any period T the copies started move at most rate*T plus one chunk.
type limiter struct {
	rate int64 // bytes per second, > 0

	mu   sync.Mutex // guards next
	next time.Time  // when the next reservation may start
}

// reserve books n bytes and returns how long after now the copy may start.
func (l *limiter) reserve(now time.Time, n int64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.next
	if start.Before(now) {
		start = now
	}
	l.next = start.Add(time.Duration(float64(n) / float64(l.rate) * float64(time.Second)))
	return start.Sub(now)
}

// wait reserves n bytes and blocks until the copy may start or ctx ends.
// A nil limiter never waits. A reservation abandoned by ctx is not given
// back (a little bandwidth is lost at shutdown, nothing more).
func (l *limiter) wait(ctx context.Context, n int64) error {
	if l == nil {
		return nil
	}
	d := l.reserve(time.Now(), n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rateWindow measures bytes per second over the last rateSeconds seconds,
// in one-second buckets. Not safe for concurrent use; the healer's mutex
// guards it.
type rateWindow struct {
	buckets [rateSeconds]int64
	last    int64 // the unix second of the newest bucket
}

const rateSeconds = 10

func (w *rateWindow) advance(now time.Time) {
	sec := now.Unix()
	if sec-w.last >= rateSeconds {
		w.buckets = [rateSeconds]int64{}
	} else {
		for s := w.last + 1; s <= sec; s++ {
			w.buckets[s%rateSeconds] = 0
		}
	}
	if sec > w.last {
		w.last = sec
	}
}

func (w *rateWindow) add(now time.Time, n int64) {
	w.advance(now)
	w.buckets[w.last%rateSeconds] += n
}

func (w *rateWindow) rate(now time.Time) float64 {
	w.advance(now)
	var sum int64
	for _, b := range w.buckets {
		sum += b
	}
	return float64(sum) / rateSeconds
}

package chunkserver

import (
	"context"
	"time"
)

// throttle paces a stream of bytes to a rate: wait sleeps until the bytes
// passed so far are due. After a pause it lets at most a second's worth
// through at once.
type throttle struct {
	rate  float64 // bytes per second
	start time.Time
	bytes int64
}

// newThrottle returns a throttle for bytesPerSec, or nil (no limit) for 0.
func newThrottle(bytesPerSec int64) *throttle {
	if bytesPerSec <= 0 {
		return nil
	}
	return &throttle{rate: float64(bytesPerSec), start: time.Now()}
}

func (t *throttle) wait(ctx context.Context, n int) error {
	if t == nil {
		return nil
	}
	t.bytes += int64(n)
	due := t.start.Add(time.Duration(float64(t.bytes) / t.rate * float64(time.Second)))
	d := time.Until(due)
	if d < -time.Second {
		t.start, t.bytes = time.Now(), 0
	}
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

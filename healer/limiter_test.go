package healer

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLimiterReserve(t *testing.T) {
	l := &limiter{rate: 100}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration // after t0
		n    int64
		want time.Duration
	}{
		{0, 100, 0},          // the first copy starts at once
		{0, 50, time.Second}, // after the first one's second
		{time.Second, 10, 500 * time.Millisecond},      // after the second one's half second
		{10 * time.Second, 10, 0},                      // idle time is not banked...
		{10 * time.Second, 10, 100 * time.Millisecond}, // ...beyond the current copy
		{10*time.Second + 50*time.Millisecond, 1, 150 * time.Millisecond},
	}
	for i, s := range steps {
		if got := l.reserve(t0.Add(s.at), s.n); got != s.want {
			t.Errorf("step %d: reserve(+%v, %d) = %v, want %v", i, s.at, s.n, got, s.want)
		}
	}
}

func TestLimiterWait(t *testing.T) {
	var none *limiter
	if err := none.wait(context.Background(), 1<<40); err != nil {
		t.Errorf("nil limiter: %v", err)
	}
	l := &limiter{rate: 1}
	if err := l.wait(context.Background(), 3600); err != nil { // first: at once
		t.Errorf("first wait: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx, 1); !errors.Is(err, context.Canceled) { // would wait an hour
		t.Errorf("canceled wait: %v", err)
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1000, 0)
	w.add(t0, 500)
	w.add(t0.Add(3*time.Second), 500)
	if got := w.rate(t0.Add(5 * time.Second)); got != 100 {
		t.Errorf("rate = %v, want 100", got)
	}
	if got := w.rate(t0.Add(12 * time.Second)); got != 50 {
		t.Errorf("rate after the first add left the window = %v, want 50", got)
	}
	if got := w.rate(t0.Add(time.Minute)); got != 0 {
		t.Errorf("rate long after = %v, want 0", got)
	}
}

// Package testlog gives tests a logrus entry that writes through t.Log, so
// a component's log lines appear only when its test fails (or under -v),
// attributed to the test that produced them.
package testlog

import (
	"bytes"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

// New returns a debug-level logger whose output goes to t.Log. Components
// must stop logging before the test ends (stop their goroutines in Close,
// registered with t.Cleanup): logging after the end is dropped, not a panic.
func New(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.DebugLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true, TimestampFormat: "15:04:05.000"})
	w := &writer{t: t}
	t.Cleanup(w.stop)
	l.SetOutput(w)
	return logrus.NewEntry(l)
}

type writer struct {
	t    testing.TB
	mu   sync.Mutex // guards done
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Helper()
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *writer) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

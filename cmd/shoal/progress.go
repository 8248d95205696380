package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line progress bar on a terminal. On anything that
// is not a terminal it stays silent, so scripts and logs stay clean.
type progress struct {
	w     io.Writer
	label string
	on    bool
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, label string, enabled bool) *progress {
	f, isFile := w.(*os.File)
	on := enabled && isFile && term.IsTerminal(int(f.Fd()))
	return &progress{w: w, label: label, on: on, start: time.Now()}
}

// update is a client.Progress: it redraws at most ten times a second.
func (p *progress) update(done, total int64) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last, p.drawn = now, true
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-3)
	if total <= 0 {
		fmt.Fprintf(p.w, "\r%s  %s  %s/s   ", p.label, formatSize(done), formatSize(int64(rate)))
		return
	}
	const width = 30
	frac := float64(done) / float64(total)
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%%  %s / %s  %s/s   ", p.label, strings.Repeat("=", n), strings.Repeat(" ", width-n),
		frac*100, formatSize(done), formatSize(total), formatSize(int64(rate)))
}

// finish ends the bar's line.
func (p *progress) finish(err error) {
	if p.on && p.drawn {
		if err != nil {
			fmt.Fprintln(p.w, " failed")
		} else {
			fmt.Fprintln(p.w)
		}
	}
}

package healer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Report describes one pass. Counts of finished copies cover the copies
// that finished since the previous pass (copies run in the background).
type Report struct {
	Time time.Time
	// Err is set when the inventory could not be read; nothing else is.
	Err      error
	SafeMode bool
	// Chunks is the number of chunks in the view.
	Chunks int
	// UnderReplicated counts chunks with fewer live replicas than wanted,
	// missing ones included.
	UnderReplicated int
	// Missing counts chunks with no readable replica; MissingChunks lists
	// the lowest of their ids (at most 100). Nothing is done for them.
	Missing       int
	MissingChunks []uint64
	// NoTarget counts copies wanted for which no eligible target exists
	// (every live node holds the chunk, or none has room).
	NoTarget int
	// Started counts copies started by this pass; Queued those that have
	// a target but waited for a free copy slot (they are planned again
	// next pass); Copying the copies running after the pass.
	Started, Queued, Copying int
	// Copied and Failed count copies that finished since the previous
	// pass, and Bytes the bytes Copied moved.
	Copied, Failed int
	Bytes          int64
	// Deleted counts deletes issued by this pass, DeleteFailed those the
	// Replicator refused (retried next pass).
	Deleted, DeleteFailed int
	// Draining maps each draining node to the replicas the view still
	// shows on it; Drained lists the draining nodes with none left.
	Draining map[string]int
	Drained  []string
}

// Stats is the healer's state for `shoal status`.
type Stats struct {
	Passes   uint64
	LastPass time.Time
	SafeMode bool // as of the last pass
	// As of the last pass.
	UnderReplicated, Missing, Queued int
	// Copying is the number of copies running now.
	Copying int
	// Totals since New.
	Copied, Failed, Deleted uint64
	BytesCopied             int64
	// BytesPerSecond is the copy rate over the last ten seconds.
	BytesPerSecond float64
}

// maxMissingListed bounds Report.MissingChunks.
const maxMissingListed = 100

// Healer runs repair passes. Each pass reads the inventory, plans (see
// plan) and starts copies in background goroutines that it owns; a pass
// returns without waiting for them, and the chunks they copy are not
// planned again while they run. Run waits for every copy before it
// returns.
type Healer struct {
	cfg   Config
	log   *logrus.Entry
	inv   Inventory
	rep   Replicator
	bw    *limiter // nil: unlimited
	kick  chan struct{}
	now   func() time.Time
	run   atomic.Bool    // a Run is active
	copyg sync.WaitGroup // copy goroutines

	lastMissing int // the previous pass's Missing; only Run's goroutine uses it

	// mu guards the fields below. It is never held while calling the
	// Inventory, the Replicator or OnPass.
	mu       sync.Mutex
	incoming map[uint64][]pending // by chunk id: copies running or finished, not yet in the view
	load     map[string]int       // node id → copies it takes part in now
	inFlight int                  // copies running now
	deleting map[replicaKey]time.Time
	failed   map[uint64]failedCopy
	copied   int   // since the last pass
	failures int   // since the last pass
	bytes    int64 // since the last pass
	stats    Stats
	rate     rateWindow
}

type pending struct {
	incoming
	source  string
	done    bool      // finished; waiting for the view to show it
	expires time.Time // when done: stop waiting for the view then
}

type failedCopy struct {
	failure
	expires time.Time
}

// New returns a Healer; it does nothing until Run.
func New(cfg Config, inv Inventory, rep Replicator) (*Healer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if inv == nil || rep == nil {
		return nil, fmt.Errorf("healer: nil Inventory or Replicator: %w", ErrInvalidConfig)
	}
	if cfg.Log == nil {
		cfg.Log = discardLog()
	}
	if cfg.Place == nil {
		cfg.Place = DefaultPlacer
	}
	h := &Healer{
		cfg:      cfg,
		log:      cfg.Log.WithField("component", "healer"),
		inv:      inv,
		rep:      rep,
		kick:     make(chan struct{}, 1),
		now:      time.Now,
		incoming: make(map[uint64][]pending),
		load:     make(map[string]int),
		deleting: make(map[replicaKey]time.Time),
		failed:   make(map[uint64]failedCopy),
	}
	if cfg.BandwidthLimit > 0 {
		h.bw = &limiter{rate: cfg.BandwidthLimit}
	}
	return h, nil
}

// Run passes at once, then every Interval and after each Kick, until ctx
// ends. It then cancels the running copies (they get ctx), waits for them
// and returns nil. Errors reading the inventory are logged and reported
// through OnPass, not returned. Run returns ErrRunning if another Run of
// h is active; it may be called again after it returned.
func (h *Healer) Run(ctx context.Context) error {
	if !h.run.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer h.run.Store(false)
	defer h.copyg.Wait()
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		h.pass(ctx)
		select {
		case <-ctx.Done():
			h.log.WithField("copying", h.Stats().Copying).Debug("stopping; waiting for copies")
			return nil
		case <-t.C:
		case <-h.kick:
		}
	}
}

// Kick asks for a pass soon. It never blocks; kicks before the pass starts
// coalesce.
func (h *Healer) Kick() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Stats returns counters for status displays. Safe to call at any time.
func (h *Healer) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	s.Copying = h.inFlight
	s.BytesPerSecond = h.rate.rate(h.now())
	return s
}

// pass runs one pass: read, plan, start copies, issue deletes, report.
func (h *Healer) pass(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	v, err := h.inv.View(ctx)
	now := h.now()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		h.log.WithError(err).Warn("reading the inventory")
		h.finishPass(Report{Time: now, Err: err})
		return
	}

	h.mu.Lock()
	h.settle(v, now)
	res := plan(h.planInput(v))
	for _, t := range res.copies {
		h.startCopy(ctx, t)
	}
	rep := Report{
		Time:            now,
		SafeMode:        res.safeMode,
		Chunks:          len(v.Chunks),
		UnderReplicated: res.under,
		Missing:         len(res.missing),
		MissingChunks:   res.missing[:min(len(res.missing), maxMissingListed)],
		NoTarget:        res.noTarget,
		Started:         len(res.copies),
		Queued:          res.queued,
		Copied:          h.copied,
		Failed:          h.failures,
		Bytes:           h.bytes,
		Draining:        res.draining,
	}
	h.copied, h.failures, h.bytes = 0, 0, 0
	h.mu.Unlock()

	for _, d := range res.deletes {
		err := h.rep.Delete(ctx, d.key.node, d.key.chunk, d.key.version)
		log := h.log.WithFields(logrus.Fields{"node": d.key.node, "chunk": d.key.chunk, "version": d.key.version, "reason": d.reason})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			rep.DeleteFailed++
			log.WithError(err).Warn("delete failed")
			continue
		}
		log.Debug("delete issued")
		rep.Deleted++
		h.mu.Lock()
		h.deleting[d.key] = now.Add(h.cfg.PendingTimeout)
		h.mu.Unlock()
	}
	for id, n := range rep.Draining {
		if n == 0 {
			rep.Drained = append(rep.Drained, id)
		}
	}
	slices.Sort(rep.Drained)
	if rep.Started+rep.Deleted+rep.Failed > 0 {
		h.log.WithFields(logrus.Fields{
			"under": rep.UnderReplicated, "missing": rep.Missing, "started": rep.Started,
			"queued": rep.Queued, "copied": rep.Copied, "failed": rep.Failed, "deleted": rep.Deleted,
		}).Info("pass")
	}
	if rep.Missing != h.lastMissing {
		log := h.log.WithFields(logrus.Fields{"missing": rep.Missing, "chunks": rep.MissingChunks[:min(len(rep.MissingChunks), 10)]})
		if rep.Missing > 0 {
			log.Warn("chunks with no readable replica")
		} else {
			log.Info("no chunk is missing any more")
		}
		h.lastMissing = rep.Missing
	}
	h.finishPass(rep)
}

// finishPass records rep in the stats and hands it to OnPass.
func (h *Healer) finishPass(rep Report) {
	h.mu.Lock()
	rep.Copying = h.inFlight
	h.stats.Passes++
	h.stats.LastPass = rep.Time
	if rep.Err == nil {
		h.stats.SafeMode = rep.SafeMode
		h.stats.UnderReplicated = rep.UnderReplicated
		h.stats.Missing = rep.Missing
		h.stats.Queued = rep.Queued
		h.stats.Deleted += uint64(rep.Deleted)
	}
	h.mu.Unlock()
	if h.cfg.OnPass != nil {
		h.cfg.OnPass(rep)
	}
}

// settle drops bookkeeping the view has caught up with or that expired:
// finished copies the view shows (or no longer needs), deletes whose
// replica is gone, old failures. h.mu is held.
func (h *Healer) settle(v View, now time.Time) {
	if len(h.incoming)+len(h.deleting)+len(h.failed) == 0 {
		return
	}
	seen := make(map[replicaKey]bool, len(h.deleting))
	see := func(k replicaKey) {
		if _, ok := h.deleting[k]; ok {
			seen[k] = true
		}
	}
	inView := make(map[uint64]bool, len(h.incoming)+len(h.failed))
	for i := range v.Chunks {
		c := &v.Chunks[i]
		if _, ok := h.failed[c.ID]; ok {
			inView[c.ID] = true
		}
		if ps, ok := h.incoming[c.ID]; ok {
			inView[c.ID] = true
			kept := ps[:0]
			for _, p := range ps {
				shown := p.version == c.Version && slices.Contains(c.Holders, p.target)
				if !p.done || (!shown && p.version == c.Version && now.Before(p.expires)) {
					kept = append(kept, p)
				}
			}
			h.incoming[c.ID] = kept
		}
		if len(h.deleting) > 0 {
			for _, id := range c.Holders {
				see(replicaKey{id, c.ID, c.Version})
			}
			for _, s := range c.Stale {
				see(replicaKey{s.Node, c.ID, s.Version})
			}
		}
	}
	for _, o := range v.Orphans {
		see(replicaKey{o.Node, o.ChunkID, o.Version})
	}
	for id, ps := range h.incoming {
		if !inView[id] {
			// The chunk needs no work any more: keep only running copies.
			kept := ps[:0]
			for _, p := range ps {
				if !p.done {
					kept = append(kept, p)
				}
			}
			ps = kept
		}
		if len(ps) == 0 {
			delete(h.incoming, id)
		} else {
			h.incoming[id] = ps
		}
	}
	for k, exp := range h.deleting {
		if !seen[k] || !now.Before(exp) {
			delete(h.deleting, k)
		}
	}
	for id, f := range h.failed {
		if !inView[id] || !now.Before(f.expires) {
			delete(h.failed, id)
		}
	}
}

// planInput snapshots the bookkeeping for plan. h.mu is held (plan runs
// under it too, so the maps are not copied).
func (h *Healer) planInput(v View) planInput {
	in := planInput{
		view:     v,
		incoming: make(map[uint64][]incoming, len(h.incoming)),
		deleting: make(map[replicaKey]bool, len(h.deleting)),
		failed:   make(map[uint64]failure, len(h.failed)),
		load:     h.load,
		inFlight: h.inFlight,
		maxNode:  h.cfg.MaxSlotsPerNode,
		maxAll:   h.cfg.MaxCopies,
		place:    h.cfg.Place,
	}
	for id, ps := range h.incoming {
		for _, p := range ps {
			in.incoming[id] = append(in.incoming[id], p.incoming)
		}
	}
	for k := range h.deleting {
		in.deleting[k] = true
	}
	for id, f := range h.failed {
		in.failed[id] = f.failure
	}
	return in
}

// startCopy books t's slots and starts its goroutine. h.mu is held.
func (h *Healer) startCopy(ctx context.Context, t copyTask) {
	src := t.from[0].ID
	w := slots(t.chunk.Length)
	h.load[src] += w
	h.load[t.to.ID] += w
	h.inFlight++
	h.incoming[t.chunk.ID] = append(h.incoming[t.chunk.ID], pending{
		incoming: incoming{version: t.chunk.Version, target: t.to.ID},
		source:   src,
	})
	h.copyg.Add(1)
	go func() {
		defer h.copyg.Done()
		err := h.bw.wait(ctx, t.chunk.Length)
		if err == nil {
			err = h.rep.Replicate(ctx, t.chunk, t.from, t.to)
		}
		h.finishCopy(ctx, t, err)
		h.Kick() // free slots and the new replica are worth a pass
	}()
}

// finishCopy releases t's slots and records its outcome.
func (h *Healer) finishCopy(ctx context.Context, t copyTask, err error) {
	src := t.from[0].ID
	log := h.log.WithFields(logrus.Fields{"chunk": t.chunk.ID, "version": t.chunk.Version, "from": src, "to": t.to.ID})
	canceled := err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
	switch {
	case err == nil:
		log.Debug("copied")
	case canceled:
		log.Debug("copy canceled")
	default:
		log.WithError(err).Warn("copy failed; retrying on a later pass")
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	w := slots(t.chunk.Length)
	for _, id := range []string{src, t.to.ID} {
		if h.load[id] -= w; h.load[id] <= 0 {
			delete(h.load, id)
		}
	}
	h.inFlight--
	ps := h.incoming[t.chunk.ID]
	for i := range ps {
		p := &ps[i]
		if p.done || p.target != t.to.ID || p.version != t.chunk.Version {
			continue
		}
		if err == nil {
			p.done, p.expires = true, now.Add(h.cfg.PendingTimeout)
		} else {
			ps = append(ps[:i], ps[i+1:]...)
		}
		break
	}
	if len(ps) == 0 {
		delete(h.incoming, t.chunk.ID)
	} else {
		h.incoming[t.chunk.ID] = ps
	}
	switch {
	case err == nil:
		h.copied++
		h.bytes += t.chunk.Length
		h.stats.Copied++
		h.stats.BytesCopied += t.chunk.Length
		h.rate.add(now, t.chunk.Length)
	case !canceled:
		h.failures++
		h.stats.Failed++
		h.failed[t.chunk.ID] = failedCopy{failure{source: src, target: t.to.ID}, now.Add(h.cfg.PendingTimeout)}
	}
}

package healer

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/testlog"
)

// fakeCluster is an in-memory Inventory and Replicator: Replicate and
// Delete apply to the view the next pass reads, unless told not to.
type fakeCluster struct {
	mu       sync.Mutex
	view     View
	calls    []string                       // "copy c<id> <from0>-><to>", "delete c<id> <node>@<v>"
	fail     func(c Chunk, to string) error // Replicate fails with this, if non-nil and non-nil result
	hold     bool                           // Replicate and Delete succeed but the view does not change
	gate     chan struct{}                  // if non-nil, each Replicate waits for a token (or ctx)
	entered  chan string                    // if non-nil, each Replicate sends its chunk call here on entry
	cur      map[string]int                 // copies running per node (from[0] and to)
	curAll   int
	maxNode  map[string]int // the most copies seen at once per node
	maxAll   int            // the most copies seen at once
	canceled int            // Replicate calls that saw ctx end
	// afterCancel, if set, runs when a gated Replicate sees ctx end,
	// before it returns.
	afterCancel func()
}

func newFake(v View) *fakeCluster {
	return &fakeCluster{view: v, cur: map[string]int{}, maxNode: map[string]int{}}
}

func (f *fakeCluster) View(ctx context.Context) (View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.view
	v.Nodes = slices.Clone(v.Nodes)
	v.Orphans = slices.Clone(v.Orphans)
	v.Chunks = slices.Clone(v.Chunks)
	for i := range v.Chunks {
		c := &v.Chunks[i]
		c.Holders, c.Stale, c.Corrupt = slices.Clone(c.Holders), slices.Clone(c.Stale), slices.Clone(c.Corrupt)
	}
	return v, nil
}

func (f *fakeCluster) Replicate(ctx context.Context, c Chunk, from []Node, to Node) error {
	call := "copy c" + itoa(c.ID) + " " + from[0].ID + "->" + to.ID
	f.mu.Lock()
	f.calls = append(f.calls, call)
	for _, id := range []string{from[0].ID, to.ID} {
		f.cur[id]++
		f.maxNode[id] = max(f.maxNode[id], f.cur[id])
	}
	f.curAll++
	f.maxAll = max(f.maxAll, f.curAll)
	gate, entered, afterCancel := f.gate, f.entered, f.afterCancel
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.cur[from[0].ID]--
		f.cur[to.ID]--
		f.curAll--
		f.mu.Unlock()
	}()
	if entered != nil {
		entered <- call
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			f.mu.Lock()
			f.canceled++
			f.mu.Unlock()
			if afterCancel != nil {
				afterCancel()
			}
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(c, to.ID); err != nil {
			return err
		}
	}
	if f.hold {
		return nil
	}
	for i := range f.view.Chunks {
		if fc := &f.view.Chunks[i]; fc.ID == c.ID && fc.Version == c.Version && !slices.Contains(fc.Holders, to.ID) {
			fc.Holders = append(fc.Holders, to.ID)
		}
	}
	return nil
}

func (f *fakeCluster) Delete(ctx context.Context, node string, chunkID, version uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "delete c"+itoa(chunkID)+" "+node+"@"+itoa(version))
	if f.hold {
		return nil
	}
	drop := func(s []string) []string { return slices.DeleteFunc(s, func(id string) bool { return id == node }) }
	for i := range f.view.Chunks {
		c := &f.view.Chunks[i]
		if c.ID != chunkID {
			continue
		}
		if c.Version == version {
			c.Holders, c.Corrupt = drop(c.Holders), drop(c.Corrupt)
		}
		c.Stale = slices.DeleteFunc(c.Stale, func(r Replica) bool { return r == Replica{node, version} })
	}
	f.view.Orphans = slices.DeleteFunc(f.view.Orphans, func(o Orphan) bool { return o == Orphan{node, chunkID, version} })
	return nil
}

// snapshot returns the calls so far and the current view.
func (f *fakeCluster) snapshot() ([]string, View) {
	v, _ := f.View(context.Background())
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls), v
}

func (f *fakeCluster) set(fn func(v *View)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.view)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// passes collects the healer's reports so a test can wait for one that
// matches, without ever blocking the healer.
type passes struct {
	mu   sync.Mutex
	all  []Report
	next int // first report not yet examined by wait
	sig  chan struct{}
}

func (p *passes) add(r Report) {
	p.mu.Lock()
	p.all = append(p.all, r)
	p.mu.Unlock()
	select {
	case p.sig <- struct{}{}:
	default:
	}
}

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// wait returns the first report after the last one wait returned that
// satisfies cond, failing the test if none comes within waitTimeout.
func (p *passes) wait(t *testing.T, what string, cond func(Report) bool) Report {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for p.next < len(p.all) {
			r := p.all[p.next]
			p.next++
			if cond(r) {
				p.mu.Unlock()
				return r
			}
		}
		p.mu.Unlock()
		select {
		case <-p.sig:
		case <-deadline.C:
			t.Fatalf("no pass where %s within %v", what, waitTimeout)
		}
	}
}

// idle reports a pass with nothing left to do or running.
func idle(r Report) bool {
	return r.Err == nil && !r.SafeMode && r.UnderReplicated == r.Missing && r.Started == 0 && r.Queued == 0 &&
		r.Copying == 0 && r.Deleted == 0
}

// harness runs a Healer over a fake until the test ends.
type harness struct {
	h      *Healer
	p      *passes
	cancel context.CancelFunc
	done   chan error
	// copyingAtReturn is the number of fake copies still inside Replicate
	// when Run returned (set before done is closed).
	copyingAtReturn int
}

// clock is a settable time source for the healer's bookkeeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// start runs a Healer over f until the test ends; clk, if not nil,
// replaces its clock.
func start(t *testing.T, cfg Config, f *fakeCluster, clk *clock) *harness {
	t.Helper()
	p := &passes{sig: make(chan struct{}, 1)}
	cfg.Log = testlog.New(t)
	cfg.OnPass = p.add
	h, err := New(cfg, f, f)
	if err != nil {
		t.Fatal(err)
	}
	if clk != nil {
		h.now = clk.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	hs := &harness{h: h, p: p, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := h.Run(ctx)
		f.mu.Lock()
		hs.copyingAtReturn = f.curAll
		f.mu.Unlock()
		hs.done <- err
		close(hs.done)
	}()
	t.Cleanup(func() { hs.stop(t) })
	return hs
}

// until waits for a report satisfying cond, kicking a pass after every
// report that does not (passes otherwise come only after copies).
func (hs *harness) until(t *testing.T, what string, cond func(Report) bool) Report {
	t.Helper()
	return hs.p.wait(t, what, func(r Report) bool {
		if cond(r) {
			return true
		}
		hs.h.Kick()
		return false
	})
}

// stop cancels Run and waits for it to return. Idempotent.
func (hs *harness) stop(t *testing.T) error {
	t.Helper()
	hs.cancel()
	select {
	case err := <-hs.done:
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("Run did not return within %v of cancel", waitTimeout)
		return nil
	}
}

// testConfig is DefaultConfig with an interval long enough that passes
// happen only at start, on Kick and after copies: tests drive them.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Interval = time.Hour
	return cfg
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/shoalfs/shoal/chunkserver"
)

// OpKind is a kind of store operation, as fault rules select them.
type OpKind int

const (
	OpCreate OpKind = iota
	OpWrite         // Writer.WriteAt
	OpCommit        // Writer.Commit
	OpRead          // ReadAt
	OpChecksums
	OpStat
	OpDelete
	OpWalk
	OpUsage
	OpSync
)

var opNames = [...]string{"create", "write", "commit", "read", "checksums", "stat", "delete", "walk", "usage", "sync"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", int(k))
}

// Op is one store operation as a Rule sees it. ID and Version are zero
// for Walk and Usage.
type Op struct {
	Kind    OpKind
	ID      chunkserver.ChunkID
	Version uint64
}

// ErrInjected is the error a Rule usually injects.
var ErrInjected = errors.New("storetest: injected fault")

// Rule says which operations fail or slow down. Of the operations it
// selects, the first Skip pass untouched, the next Count (0: all the rest)
// wait Latency (honouring their ctx) and then fail with Err (nil: they
// only wait). Err may be a store marker, e.g. chunkserver.ErrNoSpace; it
// is wrapped with the operation it hit.
type Rule struct {
	Ops     []OpKind      // the kinds selected; empty selects every kind
	Match   func(Op) bool // further selects; nil selects all
	Skip    int
	Count   int
	Err     error
	Latency time.Duration
}

func (r Rule) selects(op Op) bool {
	return (len(r.Ops) == 0 || slices.Contains(r.Ops, op.Kind)) && (r.Match == nil || r.Match(op))
}

// FaultyStore wraps a store and injects faults by its rules, in the manner
// of pebble's errorfs: tests of the chunkserver's users (client, healer)
// get a disk that fails or stalls exactly where they ask.
type FaultyStore struct {
	chunkserver.Store

	mu       sync.Mutex // guards the fields below
	rules    []Rule
	seen     []int // per rule: operations it selected so far
	injected int
}

var _ chunkserver.Store = (*FaultyStore)(nil)

// Faulty wraps s with rules; more can be set later with SetRules.
func Faulty(s chunkserver.Store, rules ...Rule) *FaultyStore {
	f := &FaultyStore{Store: s}
	f.SetRules(rules...)
	return f
}

// SetRules replaces the rules and resets their counts.
func (f *FaultyStore) SetRules(rules ...Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = slices.Clone(rules)
	f.seen = make([]int, len(rules))
}

// Injected is how many operations failed or waited because of a rule.
func (f *FaultyStore) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

func (f *FaultyStore) inject(ctx context.Context, op Op) error {
	var delay time.Duration
	var err error
	f.mu.Lock()
	hit := false
	for i, r := range f.rules {
		if !r.selects(op) {
			continue
		}
		f.seen[i]++
		if n := f.seen[i]; n <= r.Skip || (r.Count > 0 && n > r.Skip+r.Count) {
			continue
		}
		hit = true
		delay += r.Latency
		if err == nil && r.Err != nil {
			err = fmt.Errorf("%s chunk %d version %d: %w", op.Kind, op.ID, op.Version, r.Err)
		}
	}
	if hit {
		f.injected++
	}
	f.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *FaultyStore) Create(ctx context.Context, id chunkserver.ChunkID, version, baseVersion uint64, baseLength int64) (chunkserver.Writer, error) {
	op := Op{OpCreate, id, version}
	if err := f.inject(ctx, op); err != nil {
		return nil, err
	}
	w, err := f.Store.Create(ctx, id, version, baseVersion, baseLength)
	if err != nil {
		return nil, err
	}
	return &faultyWriter{Writer: w, f: f, id: id, version: version}, nil
}

func (f *FaultyStore) ReadAt(ctx context.Context, id chunkserver.ChunkID, version uint64, p []byte, off int64) (int, error) {
	if err := f.inject(ctx, Op{OpRead, id, version}); err != nil {
		return 0, err
	}
	return f.Store.ReadAt(ctx, id, version, p, off)
}

func (f *FaultyStore) Checksums(ctx context.Context, id chunkserver.ChunkID, version uint64, first, count int) ([]uint32, error) {
	if err := f.inject(ctx, Op{OpChecksums, id, version}); err != nil {
		return nil, err
	}
	return f.Store.Checksums(ctx, id, version, first, count)
}

func (f *FaultyStore) Stat(ctx context.Context, id chunkserver.ChunkID, version uint64) (chunkserver.ChunkInfo, error) {
	if err := f.inject(ctx, Op{OpStat, id, version}); err != nil {
		return chunkserver.ChunkInfo{}, err
	}
	return f.Store.Stat(ctx, id, version)
}

func (f *FaultyStore) Delete(ctx context.Context, id chunkserver.ChunkID, version uint64) error {
	if err := f.inject(ctx, Op{OpDelete, id, version}); err != nil {
		return err
	}
	return f.Store.Delete(ctx, id, version)
}

func (f *FaultyStore) Sync(ctx context.Context, id chunkserver.ChunkID, version uint64) error {
	if err := f.inject(ctx, Op{OpSync, id, version}); err != nil {
		return err
	}
	return f.Store.Sync(ctx, id, version)
}

func (f *FaultyStore) Walk(ctx context.Context, fn func(chunkserver.ChunkInfo, error) error) error {
	if err := f.inject(ctx, Op{Kind: OpWalk}); err != nil {
		return err
	}
	return f.Store.Walk(ctx, fn)
}

func (f *FaultyStore) Usage(ctx context.Context) (int64, int64, error) {
	if err := f.inject(ctx, Op{Kind: OpUsage}); err != nil {
		return 0, 0, err
	}
	return f.Store.Usage(ctx)
}

type faultyWriter struct {
	chunkserver.Writer
	f       *FaultyStore
	id      chunkserver.ChunkID
	version uint64
}

func (w *faultyWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := w.f.inject(context.Background(), Op{OpWrite, w.id, w.version}); err != nil {
		return 0, err
	}
	return w.Writer.WriteAt(p, off)
}

func (w *faultyWriter) Commit(ctx context.Context) (chunkserver.ChunkInfo, error) {
	if err := w.f.inject(ctx, Op{OpCommit, w.id, w.version}); err != nil {
		return chunkserver.ChunkInfo{}, err
	}
	return w.Writer.Commit(ctx)
}

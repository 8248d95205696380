package storetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/diskstore"
	"github.com/shoalfs/shoal/chunkserver/storetest"
)

func newFaulty(t *testing.T, rules ...storetest.Rule) *storetest.FaultyStore {
	s, err := diskstore.Open(t.TempDir(), diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return storetest.Faulty(s, rules...)
}

// A store with no rules passes the conformance suite untouched.
func TestFaultyWithoutRules(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkserver.Store { return newFaulty(t) })
}

func TestFaultyRules(t *testing.T) {
	f := newFaulty(t, storetest.Rule{Ops: []storetest.OpKind{storetest.OpRead}, Skip: 1, Count: 2, Err: chunkserver.ErrCorrupt})
	ctx := t.Context()
	if _, err := storetest.Put(ctx, f, 1, 1, storetest.Data(1, 100)); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	var got []bool
	for i := 0; i < 4; i++ {
		_, err := f.ReadAt(ctx, 1, 1, p, 0)
		if err != nil && !errors.Is(err, chunkserver.ErrCorrupt) {
			t.Fatalf("read %d: %v", i, err)
		}
		got = append(got, err != nil)
	}
	if want := []bool{false, true, true, false}; !equal(got, want) {
		t.Fatalf("failed reads %v, want %v (skip 1, then 2)", got, want)
	}
	if f.Injected() != 2 {
		t.Fatalf("Injected() = %d, want 2", f.Injected())
	}

	// Match selects by chunk; writes and commits go through the writer.
	f.SetRules(storetest.Rule{Ops: []storetest.OpKind{storetest.OpCommit}, Err: chunkserver.ErrNoSpace,
		Match: func(op storetest.Op) bool { return op.ID == 2 }})
	if _, err := storetest.Put(ctx, f, 2, 1, storetest.Data(2, 100)); !errors.Is(err, chunkserver.ErrNoSpace) {
		t.Fatalf("commit of chunk 2: %v, want ErrNoSpace", err)
	}
	if _, err := storetest.Put(ctx, f, 3, 1, storetest.Data(3, 100)); err != nil {
		t.Fatalf("commit of chunk 3: %v", err)
	}

	// Latency honours the context.
	f.SetRules(storetest.Rule{Ops: []storetest.OpKind{storetest.OpStat}, Latency: time.Hour})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := f.Stat(cctx, 1, 1); !errors.Is(err, cctx.Err()) || cctx.Err() == nil {
		t.Fatalf("stat with an hour of latency: %v, want the context's error", err)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

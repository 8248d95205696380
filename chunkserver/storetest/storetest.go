// Package storetest checks a chunkserver.Store against the contract
// documented on that interface (Run), and wraps a store to inject faults
// for tests of its users (Faulty).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/chunk"
)

// Option adds store-specific abilities to Run.
type Option func(*options)

type options struct {
	corrupt func(t *testing.T, s chunkserver.Store, id chunkserver.ChunkID, version uint64, off int64)
	reopen  func(t *testing.T, s chunkserver.Store) chunkserver.Store
}

// WithCorrupt lets Run damage stored data: corrupt must change the stored
// byte at data offset off of replica (id, version), behind the store's
// back. Without it the corruption tests are skipped.
func WithCorrupt(corrupt func(t *testing.T, s chunkserver.Store, id chunkserver.ChunkID, version uint64, off int64)) Option {
	return func(o *options) { o.corrupt = corrupt }
}

// WithReopen lets Run simulate a crash: reopen must drop s without
// committing or aborting its writers (as a crash would) and open the same
// storage again. Without it the crash tests are skipped.
func WithReopen(reopen func(t *testing.T, s chunkserver.Store) chunkserver.Store) Option {
	return func(o *options) { o.reopen = reopen }
}

// Run runs the conformance suite against stores made by newStore, one per
// subtest. newStore should register the store's Close with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) chunkserver.Store, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s chunkserver.Store, o *options)
	}{
		{"PutReadStat", testPutReadStat},
		{"UnalignedReads", testUnalignedReads},
		{"NotFound", testNotFound},
		{"Invalid", testInvalid},
		{"Exists", testExists},
		{"VersionsSideBySide", testVersions},
		{"BuildFromBase", testBuildFromBase},
		{"PatchManyBlocks", testPatchManyBlocks},
		{"OutOfOrderWrites", testOutOfOrderWrites},
		{"Abort", testAbort},
		{"DeleteAndUsage", testDeleteAndUsage},
		{"Walk", testWalk},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Corruption", testCorruption},
		{"CrashAtomicity", testCrash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t), &o) })
	}
}

// Put stores data as replica (id, version) from scratch, in 1 MiB writes.
func Put(ctx context.Context, s chunkserver.Store, id chunkserver.ChunkID, version uint64, data []byte) (chunkserver.ChunkInfo, error) {
	w, err := s.Create(ctx, id, version, 0, 0)
	if err != nil {
		return chunkserver.ChunkInfo{}, err
	}
	defer w.Abort()
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := w.WriteAt(data[off:min(off+1<<20, len(data))], int64(off)); err != nil {
			return chunkserver.ChunkInfo{}, err
		}
	}
	return w.Commit(ctx)
}

// Data returns n pseudo-random bytes determined by seed.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Info is what a store must report for a replica holding data.
func Info(id chunkserver.ChunkID, version uint64, data []byte) chunkserver.ChunkInfo {
	return chunkserver.ChunkInfo{ID: id, Version: version, Length: int64(len(data)), Summary: chunk.Summary(blockCRCs(data))}
}

func blockCRCs(data []byte) []uint32 {
	var crcs []uint32
	for off := 0; off < len(data); off += chunk.BlockSize {
		crcs = append(crcs, chunk.Checksum(data[off:min(off+chunk.BlockSize, len(data))]))
	}
	return crcs
}

func mustPut(t *testing.T, s chunkserver.Store, id chunkserver.ChunkID, version uint64, data []byte) {
	t.Helper()
	info, err := Put(t.Context(), s, id, version, data)
	if err != nil {
		t.Fatalf("put chunk %d v%d (%d bytes): %v", id, version, len(data), err)
	}
	if want := Info(id, version, data); info != want {
		t.Fatalf("put chunk %d v%d: info %+v, want %+v", id, version, info, want)
	}
}

// check reads (id, version) back in several ways and compares with want.
func check(t *testing.T, s chunkserver.Store, id chunkserver.ChunkID, version uint64, want []byte) {
	t.Helper()
	ctx := t.Context()
	info, err := s.Stat(ctx, id, version)
	if err != nil {
		t.Fatalf("stat chunk %d v%d: %v", id, version, err)
	}
	if w := Info(id, version, want); info != w {
		t.Fatalf("stat chunk %d v%d: %+v, want %+v", id, version, info, w)
	}
	got := make([]byte, len(want)+10)
	n, err := s.ReadAt(ctx, id, version, got, 0)
	if n != len(want) || !errors.Is(err, io.EOF) {
		t.Fatalf("read chunk %d v%d past its end: n=%d err=%v, want %d, io.EOF", id, version, n, err, len(want))
	}
	if !bytes.Equal(got[:n], want) {
		t.Fatalf("read chunk %d v%d: data differs (first at %d)", id, version, firstDiff(got[:n], want))
	}
	crcs, err := s.Checksums(ctx, id, version, 0, len(want)/chunk.BlockSize+5)
	if err != nil {
		t.Fatalf("checksums chunk %d v%d: %v", id, version, err)
	}
	if w := blockCRCs(want); !equalU32(crcs, w) {
		t.Fatalf("checksums chunk %d v%d: %d values %x, want %d %x", id, version, len(crcs), head(crcs), len(w), head(w))
	}
}

func testPutReadStat(t *testing.T, s chunkserver.Store, _ *options) {
	sizes := []int{0, 1, 4096, chunk.BlockSize - 1, chunk.BlockSize, chunk.BlockSize + 1, 3*chunk.BlockSize + 17, 2<<20 + 5}
	for i, n := range sizes {
		data := Data(uint64(i), n)
		mustPut(t, s, chunkserver.ChunkID(100+i), 1, data)
		check(t, s, chunkserver.ChunkID(100+i), 1, data)
	}
	// A block-aligned middle range reads exactly.
	data := Data(7, 5*chunk.BlockSize)
	mustPut(t, s, 7, 3, data)
	p := make([]byte, 2*chunk.BlockSize)
	if n, err := s.ReadAt(t.Context(), 7, 3, p, chunk.BlockSize); n != len(p) || err != nil {
		t.Fatalf("aligned read: n=%d err=%v", n, err)
	}
	if !bytes.Equal(p, data[chunk.BlockSize:3*chunk.BlockSize]) {
		t.Fatal("aligned read: data differs")
	}
	if crcs, err := s.Checksums(t.Context(), 7, 3, 1, 2); err != nil || !equalU32(crcs, blockCRCs(data)[1:3]) {
		t.Fatalf("checksums of blocks [1,3): %x, %v", crcs, err)
	}
	if crcs, err := s.Checksums(t.Context(), 7, 3, 9, 2); err != nil || len(crcs) != 0 {
		t.Fatalf("checksums past the end: %x, %v; want none", crcs, err)
	}
}

func testUnalignedReads(t *testing.T, s chunkserver.Store, _ *options) {
	data := Data(11, 3*chunk.BlockSize+1000)
	mustPut(t, s, 1, 1, data)
	cases := []struct{ off, n int }{
		{0, 1}, {1, 10}, {chunk.BlockSize - 3, 6}, {chunk.BlockSize, 1}, {100, 2 * chunk.BlockSize},
		{len(data) - 1, 1}, {len(data) - 10, 10}, {5, len(data) - 5},
	}
	for _, c := range cases {
		p := make([]byte, c.n)
		n, err := s.ReadAt(t.Context(), 1, 1, p, int64(c.off))
		if err != nil && !(errors.Is(err, io.EOF) && c.off+c.n == len(data)) {
			t.Fatalf("read [%d,+%d): %v", c.off, c.n, err)
		}
		if n != c.n || !bytes.Equal(p, data[c.off:c.off+c.n]) {
			t.Fatalf("read [%d,+%d): n=%d, data differs", c.off, c.n, n)
		}
	}
	if n, err := s.ReadAt(t.Context(), 1, 1, make([]byte, 4), int64(len(data))); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read at the end: n=%d err=%v, want 0, io.EOF", n, err)
	}
}

func testNotFound(t *testing.T, s chunkserver.Store, _ *options) {
	ctx := t.Context()
	mustPut(t, s, 1, 1, Data(1, 10))
	checks := []struct {
		name string
		err  error
	}{
		{"stat missing chunk", func() error { _, err := s.Stat(ctx, 2, 1); return err }()},
		{"stat missing version", func() error { _, err := s.Stat(ctx, 1, 2); return err }()},
		{"read", func() error { _, err := s.ReadAt(ctx, 2, 1, make([]byte, 1), 0); return err }()},
		{"checksums", func() error { _, err := s.Checksums(ctx, 2, 1, 0, 1); return err }()},
		{"delete", s.Delete(ctx, 2, 1)},
		{"sync", s.Sync(ctx, 2, 1)},
		{"create from missing base", func() error {
			w, err := s.Create(ctx, 1, 5, 4, 10)
			if err == nil {
				w.Abort()
			}
			return err
		}()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, chunkserver.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", c.name, c.err)
		}
	}
}

func testInvalid(t *testing.T, s chunkserver.Store, _ *options) {
	ctx := t.Context()
	for _, c := range []struct {
		name          string
		version, base uint64
		baseLen       int64
	}{
		{"version 0", 0, 0, 0},
		{"base not older", 2, 2, 0},
		{"negative base length", 2, 0, -1},
		{"base length over max", 2, 0, chunk.MaxSize + 1},
	} {
		w, err := s.Create(ctx, 1, c.version, c.base, c.baseLen)
		if err == nil {
			w.Abort()
		}
		if !errors.Is(err, chunkserver.ErrInvalid) {
			t.Errorf("create %s: %v, want ErrInvalid", c.name, err)
		}
	}
	w, err := s.Create(ctx, 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.WriteAt([]byte("x"), chunk.MaxSize); !errors.Is(err, chunkserver.ErrInvalid) {
		t.Errorf("write past the max size: %v, want ErrInvalid", err)
	}
	if _, err := w.WriteAt([]byte("x"), -1); !errors.Is(err, chunkserver.ErrInvalid) {
		t.Errorf("write at -1: %v, want ErrInvalid", err)
	}
}

func testExists(t *testing.T, s chunkserver.Store, _ *options) {
	ctx := t.Context()
	mustPut(t, s, 1, 1, Data(1, 100))
	if w, err := s.Create(ctx, 1, 1, 0, 0); !errors.Is(err, chunkserver.ErrExists) {
		if err == nil {
			w.Abort()
		}
		t.Fatalf("create over a sealed replica: %v, want ErrExists", err)
	}
	w, err := s.Create(ctx, 2, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if w2, err := s.Create(ctx, 2, 1, 0, 0); !errors.Is(err, chunkserver.ErrExists) {
		if err == nil {
			w2.Abort()
		}
		t.Fatalf("create of a replica being built: %v, want ErrExists", err)
	}
	check(t, s, 1, 1, Data(1, 100))
}

func testVersions(t *testing.T, s chunkserver.Store, _ *options) {
	ctx := t.Context()
	v1, v2 := Data(1, 200_000), Data(2, 50_000)
	mustPut(t, s, 9, 1, v1)
	mustPut(t, s, 9, 2, v2)
	check(t, s, 9, 1, v1)
	check(t, s, 9, 2, v2)
	if err := s.Delete(ctx, 9, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, 9, 1); !errors.Is(err, chunkserver.ErrNotFound) {
		t.Fatalf("stat of deleted v1: %v, want ErrNotFound", err)
	}
	check(t, s, 9, 2, v2)
}

type patch struct {
	off  int
	data []byte
}

// model is what a replica built from base, cut to baseLen, then patched
// must hold.
func model(base []byte, baseLen int, patches []patch) []byte {
	out := make([]byte, baseLen)
	copy(out, base)
	for _, p := range patches {
		if end := p.off + len(p.data); end > len(out) {
			out = append(out, make([]byte, end-len(out))...)
		}
		copy(out[p.off:], p.data)
	}
	return out
}

func testBuildFromBase(t *testing.T, s chunkserver.Store, _ *options) {
	const B = chunk.BlockSize
	base := Data(1, 3*B+500)
	mustPut(t, s, 5, 1, base)
	cases := []struct {
		name    string
		baseVer uint64
		baseLen int
		patches []patch
	}{
		{"same length, no patch", 1, len(base), nil},
		{"truncate mid-block", 1, B + 7, nil},
		{"truncate to zero", 1, 0, nil},
		{"zero-extend", 1, 5*B + 3, nil},
		{"patch inside", 1, len(base), []patch{{100, Data(2, 50)}, {2*B - 10, Data(3, 20)}}},
		{"truncate then patch past the base", 1, B + 7, []patch{{10, Data(4, 5)}, {2*B + 100, Data(5, B)}}},
		{"zero-extend and overwrite the tail", 1, 4 * B, []patch{{3*B + 400, Data(6, 300)}}},
		{"append after the base", 1, len(base), []patch{{len(base), Data(7, 2*B)}}},
		{"overlapping patches", 1, len(base), []patch{{B, Data(8, B)}, {B + 100, Data(9, 10)}, {B - 5, Data(10, 20)}}},
		{"in order, behind, across and past the end", 1, len(base), []patch{
			{B + 3, Data(12, 100)}, {10, Data(13, 5)}, {B + 50, Data(14, B)}, {2*B + 7, Data(15, 9)},
			{2*B + 1, Data(16, 3)}, {3*B + 499, Data(17, 2)}, {4*B + 1, Data(18, 7)}}},
		{"zero-extend, then patches in the zeros", 1, 6 * B, []patch{{3*B + 600, Data(19, 5)}, {5 * B, Data(20, B)}}},
		{"no base, zero length, sparse write", 0, 0, []patch{{3*B + 1, Data(11, 10)}}},
		{"no base, zero-filled", 0, 2*B + 9, nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			version := uint64(2 + i)
			w, err := s.Create(t.Context(), 5, version, c.baseVer, int64(c.baseLen))
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			defer w.Abort()
			for _, p := range c.patches {
				if _, err := w.WriteAt(p.data, int64(p.off)); err != nil {
					t.Fatalf("write at %d: %v", p.off, err)
				}
			}
			info, err := w.Commit(t.Context())
			if err != nil {
				t.Fatalf("commit: %v", err)
			}
			var b []byte
			if c.baseVer != 0 {
				b = base
			}
			want := model(b, c.baseLen, c.patches)
			if w := Info(5, version, want); info != w {
				t.Fatalf("commit: %+v, want %+v", info, w)
			}
			check(t, s, 5, version, want)
		})
	}
	check(t, s, 5, 1, base) // the base is untouched
}

// testPatchManyBlocks patches most blocks of a larger base, in runs
// longer than one read-back (16 blocks) and with gaps, the last
// (partial) block included: every checksum must still be right.
// buildFrom builds version of id on base, cut or extended to baseLen,
// with patches, and commits it; it aborts the writer on any error.
func buildFrom(ctx context.Context, s chunkserver.Store, id chunk.ID, version, base uint64, baseLen int64, patches ...patch) error {
	w, err := s.Create(ctx, id, version, base, baseLen)
	if err != nil {
		return err
	}
	defer w.Abort()
	for _, p := range patches {
		if _, err := w.WriteAt(p.data, int64(p.off)); err != nil {
			return err
		}
	}
	_, err = w.Commit(ctx)
	return err
}

func testPatchManyBlocks(t *testing.T, s chunkserver.Store, _ *options) {
	const B = chunk.BlockSize
	base := Data(20, 40*B+500)
	mustPut(t, s, 6, 1, base)
	var patches []patch
	for b := 0; b < 41; b++ {
		if b == 36 || b == 38 {
			continue
		}
		off := b*B + 17*b%400
		patches = append(patches, patch{off, Data(uint64(100+b), min(4096, len(base)-off))})
	}
	w, err := s.Create(t.Context(), 6, 2, 1, int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, p := range patches {
		if _, err := w.WriteAt(p.data, int64(p.off)); err != nil {
			t.Fatalf("write at %d: %v", p.off, err)
		}
	}
	info, err := w.Commit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := model(base, len(base), patches)
	if w := Info(6, 2, want); info != w {
		t.Fatalf("commit: %+v, want %+v", info, w)
	}
	check(t, s, 6, 2, want)
}

func testOutOfOrderWrites(t *testing.T, s chunkserver.Store, _ *options) {
	r := rand.New(rand.NewPCG(1, 2))
	var patches []patch
	for i := 0; i < 60; i++ {
		n := 1 + r.IntN(3*chunk.BlockSize)
		if i%3 == 0 {
			n = 1 + r.IntN(100) // small writes exercise buffering
		}
		patches = append(patches, patch{r.IntN(2 << 20), Data(uint64(i), n)})
	}
	// Then a run of small in-order appends.
	end := len(model(nil, 0, patches))
	for i := 0; i < 100; i++ {
		d := Data(uint64(1000+i), 1+r.IntN(5000))
		patches = append(patches, patch{end, d})
		end += len(d)
	}
	w, err := s.Create(t.Context(), 3, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, p := range patches {
		if _, err := w.WriteAt(p.data, int64(p.off)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	check(t, s, 3, 1, model(nil, 0, patches))
}

func testAbort(t *testing.T, s chunkserver.Store, _ *options) {
	ctx := t.Context()
	_, used0, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(ctx, 4, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(Data(1, 300_000), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second abort: %v", err)
	}
	if _, err := w.Commit(ctx); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	if _, err := s.Stat(ctx, 4, 1); !errors.Is(err, chunkserver.ErrNotFound) {
		t.Fatalf("stat after abort: %v, want ErrNotFound", err)
	}
	if _, used, _ := s.Usage(ctx); used != used0 {
		t.Fatalf("used %d after abort, want %d as before", used, used0)
	}
	mustPut(t, s, 4, 1, Data(2, 10)) // the name is free again
	check(t, s, 4, 1, Data(2, 10))
}

func testDeleteAndUsage(t *testing.T, s chunkserver.Store, _ *options) {
	ctx := t.Context()
	capacity, used0, err := s.Usage(ctx)
	if err != nil || capacity <= 0 {
		t.Fatalf("usage: capacity %d, %v", capacity, err)
	}
	mustPut(t, s, 1, 1, Data(1, 1<<20))
	_, used1, _ := s.Usage(ctx)
	if used1 < used0+1<<20 {
		t.Fatalf("used %d after a 1 MiB put, was %d", used1, used0)
	}
	if err := s.Delete(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, used, _ := s.Usage(ctx); used != used0 {
		t.Fatalf("used %d after delete, want %d", used, used0)
	}
	if err := s.Delete(ctx, 1, 1); !errors.Is(err, chunkserver.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

func testWalk(t *testing.T, s chunkserver.Store, _ *options) {
	want := map[chunkserver.ChunkInfo]bool{}
	for i := 0; i < 40; i++ {
		id := chunkserver.ChunkID(i * 7919) // spread over fan-out directories
		data := Data(uint64(i), i*1000)
		mustPut(t, s, id, uint64(1+i%3), data)
		want[Info(id, uint64(1+i%3), data)] = true
	}
	mustPut(t, s, 1<<40, 1, nil) // an empty replica
	want[Info(1<<40, 1, nil)] = true
	got := map[chunkserver.ChunkInfo]bool{}
	err := s.Walk(t.Context(), func(info chunkserver.ChunkInfo, err error) error {
		if err != nil {
			return err
		}
		if got[info] {
			return fmt.Errorf("%+v seen twice", info)
		}
		got[info] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("walk saw %d replicas, want %d", len(got), len(want))
	}
	for info := range want {
		if !got[info] {
			t.Fatalf("walk missed %+v", info)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(t.Context(), func(chunkserver.ChunkInfo, error) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("walk with fn failing: %v after %d calls, want stop after 1", err, calls)
	}
}

func testConcurrentPuts(t *testing.T, s chunkserver.Store, _ *options) {
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half the writers share a chunk id at different versions.
			id := chunkserver.ChunkID(i % (n / 2))
			if _, err := Put(t.Context(), s, id, uint64(1+i/(n/2)), Data(uint64(i), 100_000+i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		check(t, s, chunkserver.ChunkID(i%(n/2)), uint64(1+i/(n/2)), Data(uint64(i), 100_000+i))
	}
}

func testCorruption(t *testing.T, s chunkserver.Store, o *options) {
	if o.corrupt == nil {
		t.Skip("store gives no corruption hook (WithCorrupt)")
	}
	ctx := t.Context()
	data := Data(1, 3*chunk.BlockSize+100)
	mustPut(t, s, 8, 1, data)
	o.corrupt(t, s, 8, 1, chunk.BlockSize+5)

	p := make([]byte, 10)
	if _, err := s.ReadAt(ctx, 8, 1, p, chunk.BlockSize+chunk.BlockSize/2); !errors.Is(err, chunkserver.ErrCorrupt) {
		t.Fatalf("read of the damaged block: %v, want ErrCorrupt", err)
	}
	if _, err := s.ReadAt(ctx, 8, 1, make([]byte, len(data)), 0); !errors.Is(err, chunkserver.ErrCorrupt) {
		t.Fatalf("read of the whole replica: %v, want ErrCorrupt", err)
	}
	// Undamaged blocks still read.
	if n, err := s.ReadAt(ctx, 8, 1, p, 2*chunk.BlockSize); err != nil || !bytes.Equal(p[:n], data[2*chunk.BlockSize:2*chunk.BlockSize+10]) {
		t.Fatalf("read of a good block: n=%d %v", n, err)
	}
	// A damaged base is not copied into a new version: Create, a write
	// or Commit fails (a store may copy the base at any of them), and
	// the version does not exist.
	if err := buildFrom(ctx, s, 8, 2, 1, int64(len(data)), patch{0, Data(2, 10)}); !errors.Is(err, chunkserver.ErrCorrupt) {
		t.Fatalf("build from a damaged base: %v, want ErrCorrupt", err)
	}
	if _, err := s.Stat(ctx, 8, 2); !errors.Is(err, chunkserver.ErrNotFound) {
		t.Fatalf("stat of the version built on a damaged base: %v, want ErrNotFound", err)
	}
	// Unless the writes replace every damaged block: then no damaged
	// byte would be copied, and a store may build the version.
	good := Data(3, 2*chunk.BlockSize)
	if err := buildFrom(ctx, s, 8, 3, 1, int64(len(data)), patch{0, good}); err == nil {
		check(t, s, 8, 3, model(data, len(data), []patch{{0, good}}))
	} else if !errors.Is(err, chunkserver.ErrCorrupt) {
		t.Fatalf("build replacing the damaged block: %v, want success or ErrCorrupt", err)
	}
	// The replica is still listed; deleting it works.
	found := false
	s.Walk(ctx, func(info chunkserver.ChunkInfo, err error) error {
		found = found || (info.ID == 8 && info.Version == 1)
		return nil
	})
	if !found {
		t.Fatal("walk does not list the damaged replica")
	}
	if err := s.Delete(ctx, 8, 1); err != nil {
		t.Fatal(err)
	}
}

func testCrash(t *testing.T, s chunkserver.Store, o *options) {
	if o.reopen == nil {
		t.Skip("store cannot be reopened (WithReopen)")
	}
	ctx := t.Context()
	sealed := Data(1, 200_000)
	mustPut(t, s, 1, 1, sealed)
	if err := s.Sync(ctx, 1, 1); err != nil {
		t.Fatalf("sync chunk 1: %v", err)
	}
	w, err := s.Create(ctx, 2, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(Data(2, 300_000), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Abort() }) // after the "crash": only releases the fd
	s = o.reopen(t, s)              // crash with w in flight

	check(t, s, 1, 1, sealed)
	if _, err := s.Stat(ctx, 2, 1); !errors.Is(err, chunkserver.ErrNotFound) {
		t.Fatalf("replica being built at the crash: %v, want ErrNotFound", err)
	}
	var seen []chunkserver.ChunkInfo
	s.Walk(ctx, func(info chunkserver.ChunkInfo, err error) error { seen = append(seen, info); return err })
	if len(seen) != 1 || seen[0] != Info(1, 1, sealed) {
		t.Fatalf("walk after the crash: %+v, want only chunk 1", seen)
	}
	_, used, _ := s.Usage(ctx)
	mustPut(t, s, 2, 1, Data(3, 10)) // the name is free again
	if err := s.Delete(ctx, 2, 1); err != nil {
		t.Fatal(err)
	}
	if _, after, _ := s.Usage(ctx); after != used {
		t.Fatalf("used %d after put and delete, want %d", after, used)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func equalU32(a, b []uint32) bool {
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

func head(a []uint32) []uint32 { return a[:min(len(a), 4)] }

package client

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// check compares s against a reference image of the chunk, in which a
// hole is marked by valid[i] == false.
func checkSegments(t *testing.T, s *segments, ref []byte, valid []bool) {
	t.Helper()
	var size int64
	prev := int64(-1)
	for _, r := range s.from(0) {
		if r.off < prev {
			t.Fatalf("runs overlap or unsorted: run at %d after end %d", r.off, prev)
		}
		if r.off/bucketSpan != (r.end()-1)/bucketSpan {
			t.Fatalf("run [%d, %d) crosses a bucket's edge", r.off, r.end())
		}
		if len(r.data) == 0 {
			t.Fatalf("empty run at %d", r.off)
		}
		prev = r.end()
		size += int64(len(r.data))
		for i, b := range r.data {
			o := r.off + int64(i)
			if !valid[o] || ref[o] != b {
				t.Fatalf("byte %d: got %d, want %d (valid %v)", o, b, ref[o], valid[o])
			}
		}
	}
	var want int64
	for _, v := range valid {
		if v {
			want++
		}
	}
	if size != want || s.size != want {
		t.Fatalf("size: runs hold %d, s.size %d, want %d", size, s.size, want)
	}
}

func TestSegmentsInsert(t *testing.T) {
	tests := []struct {
		name   string
		writes [][2]int // offset, length
	}{
		{"sequential", [][2]int{{0, 10}, {10, 10}, {20, 5}}},
		{"gap", [][2]int{{0, 10}, {30, 10}}},
		{"overwrite middle", [][2]int{{0, 100}, {40, 10}}},
		{"overwrite spanning runs", [][2]int{{0, 10}, {20, 10}, {40, 10}, {5, 40}}},
		{"cover everything", [][2]int{{10, 10}, {30, 10}, {0, 60}}},
		{"before first", [][2]int{{50, 10}, {0, 10}}},
		{"touching before", [][2]int{{50, 10}, {40, 10}}},
		{"exact replace", [][2]int{{0, 10}, {10, 10}, {10, 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s segments
			ref := make([]byte, 200)
			valid := make([]bool, 200)
			for i, w := range tc.writes {
				p := bytes.Repeat([]byte{byte(i + 1)}, w[1])
				s.insert(int64(w[0]), p)
				copy(ref[w[0]:], p)
				for k := w[0]; k < w[0]+w[1]; k++ {
					valid[k] = true
				}
				checkSegments(t, &s, ref, valid)
			}
		})
	}
}

// Random writes against a reference image; slices handed out earlier
// must never change under later writes.
func TestSegmentsRandom(t *testing.T) {
	for _, tc := range []struct{ size, maxWrite, rounds int }{
		{1 << 16, 4096, 20},                     // one bucket
		{4 * bucketSpan, 3 * bucketSpan / 2, 4}, // writes across buckets' edges
	} {
		segmentsRandom(t, tc.size, tc.maxWrite, tc.rounds)
	}
}

func segmentsRandom(t *testing.T, size, maxWrite, rounds int) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range rounds {
		var s segments
		ref := make([]byte, size)
		valid := make([]bool, size)
		type held struct {
			data, want []byte
		}
		var hold []held
		for i := range 200 {
			off := rng.IntN(size - 1)
			n := 1 + rng.IntN(min(size-off, maxWrite))
			if rng.IntN(4) == 0 && s.end() < int64(size-10) { // sequential append
				off = int(s.end())
				n = min(n, size-off)
			}
			p := make([]byte, n)
			for k := range p {
				p[k] = byte(rng.Uint32())
			}
			s.insert(int64(off), p)
			copy(ref[off:], p)
			for k := off; k < off+n; k++ {
				valid[k] = true
			}
			if i%10 == 0 {
				for _, r := range s.from(int64(rng.IntN(size))) {
					hold = append(hold, held{r.data, bytes.Clone(r.data)})
				}
			}
		}
		checkSegments(t, &s, ref, valid)
		for _, h := range hold {
			if !bytes.Equal(h.data, h.want) {
				t.Fatalf("round %d: a slice handed out earlier changed", round)
			}
		}
		// overlay reproduces the image where valid.
		dst := make([]byte, size)
		overlay(dst, 0, s.from(0))
		for k := range dst {
			if valid[k] && dst[k] != ref[k] {
				t.Fatalf("overlay byte %d = %d, want %d", k, dst[k], ref[k])
			}
		}
	}
}

func TestSegmentsMergeBound(t *testing.T) {
	var s segments
	p := make([]byte, 128<<10)
	for i := range 20 {
		s.insert(int64(i*len(p)), p)
	}
	for _, r := range s.from(0) {
		if len(r.data) > maxRun {
			t.Fatalf("run of %d bytes, over maxRun %d", len(r.data), maxRun)
		}
	}
	if got, want := len(s.from(0)), (20*len(p)+maxRun-1)/maxRun; got != want {
		t.Errorf("%d runs, want %d (adjacent writes merged up to maxRun)", got, want)
	}
}

func TestSegmentsClip(t *testing.T) {
	var s segments
	s.insert(0, []byte("abcdef"))
	s.insert(10, []byte("ghij"))
	got := s.clip(3, 12)
	if len(got) != 2 || got[0].off != 3 || string(got[0].data) != "def" || got[1].off != 10 || string(got[1].data) != "gh" {
		t.Errorf("clip(3,12) = %+v", got)
	}
	if got := s.from(6); len(got) != 1 || string(got[0].data) != "ghij" {
		t.Errorf("from(6) = %+v", got)
	}
	if got := s.clip(6, 10); len(got) != 0 {
		t.Errorf("clip of a gap = %+v", got)
	}
}

// BenchmarkSegmentsRandom4K writes 4 KiB pages of a 64 MiB chunk in
// random order, as fio randwrite does to one chunk's generation.
func BenchmarkSegmentsRandom4K(b *testing.B) {
	const pages = 64 << 20 >> 12
	order := rand.New(rand.NewPCG(3, 4)).Perm(pages)
	p := make([]byte, 4096)
	b.SetBytes(int64(len(p)))
	var s segments
	for i := 0; b.Loop(); i++ {
		if i%pages == 0 {
			s = segments{}
		}
		s.insert(int64(order[i%pages])*4096, p)
	}
}

// Large runs take pooled buffers of maxRun capacity, small ones exactly
// their size; recycle gives back only whole buffers, never a trimmed or
// split run that shares one, and clone reuses them.
func TestSegmentsRecycle(t *testing.T) {
	bufs := new(runBufs)
	s := segments{bufs: bufs}
	big := bytes.Repeat([]byte{1}, maxRun)
	const whole = 8
	for i := range whole {
		s.insert(int64(i)*maxRun, big[:maxRun/2+i]) // pooled: at least maxRun/2
	}
	s.insert(10*maxRun, big[:maxRun/2-1])   // too small: the heap
	s.insert(12*maxRun, big)                // pooled, then split:
	s.insert(12*maxRun+100, []byte("hole")) // a head [:100:100] and a tail
	caps := map[int64]int{}
	for _, r := range s.from(0) {
		caps[r.off] = cap(r.data)
	}
	for i := range whole {
		if caps[int64(i)*maxRun] != maxRun {
			t.Fatalf("run %d: capacity %d, want maxRun", i, caps[int64(i)*maxRun])
		}
	}
	for _, off := range []int64{10 * maxRun, 12 * maxRun, 12*maxRun + 104} {
		if caps[off] >= maxRun {
			t.Fatalf("capacities %v: want a small run's, and a split run's head's and tail's, below maxRun", caps)
		}
	}
	given := map[*byte]bool{}
	for _, r := range s.from(0) {
		if cap(r.data) == maxRun {
			given[&r.data[0]] = true
		}
	}
	s.recycle()
	if s.from(0) != nil {
		t.Fatal("runs left after recycle")
	}
	// The race detector's sync.Pool drops a quarter of the Puts at
	// random; of 8 buffers given back, some come out again.
	reused := 0
	for range 2 * whole {
		p := bufs.clone(big[:maxRun/2])
		if cap(p) != maxRun || len(p) != maxRun/2 {
			t.Fatalf("pooled clone: len %d cap %d", len(p), cap(p))
		}
		if given[&p[0]] {
			reused++
		}
	}
	if reused == 0 {
		t.Error("no recycled buffer was reused")
	}
	if reused > whole {
		t.Errorf("%d buffers reused, only %d were whole", reused, whole)
	}
}

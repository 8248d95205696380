package client

import (
	"bytes"
	"slices"
	"sort"
	"sync"

	"github.com/shoalfs/shoal/internal/hugebuf"
	"github.com/shoalfs/shoal/internal/transport"
)

// maxRun is the size up to which adjacent writes are merged into one run;
// it is also the most data one WriteChunk message carries.
const maxRun = transport.MaxDataMessage

// segment is a run of bytes at an offset (within a chunk, or within the
// file for read overlays).
type segment struct {
	off  int64
	data []byte
}

func (s segment) end() int64 { return s.off + int64(len(s.data)) }

// segments is a sorted set of non-overlapping runs of bytes: the data
// written into one generation of one chunk. The bytes of a run, once
// handed out by from or clip, are never modified: an overwrite replaces
// runs (trimmed runs lose their spare capacity), and merging a write into
// a run appends past its length. So readers and the sender use those
// slices without holding the file's lock.
//
// The runs are kept in buckets of bucketSpan bytes of the chunk, and no
// run crosses a bucket's edge: a write into the middle of the data moves
// the headers of its bucket's runs only. Random 4 KiB writes leave up to
// 16,384 runs in a 64 MiB chunk; in one sorted slice, moving half of
// them on each write cost 13% of the mount's CPU under fio randwrite.
type segments struct {
	buckets []runList // bucket i holds the runs in [i*bucketSpan, (i+1)*bucketSpan)
	size    int64     // bytes held
	last    int64     // end of the last run: runs are replaced, never removed
	bufs    *runBufs  // where large runs get their buffers; nil: the heap
}

// bucketSpan is the span of one bucket of runs; a multiple of maxRun, so
// that a sequential stream still fills runs up to maxRun.
const bucketSpan = maxRun

// insert copies p in at off, replacing what was there.
func (s *segments) insert(off int64, p []byte) {
	for len(p) > 0 {
		b := int(off / bucketSpan)
		n := min(int64(len(p)), int64(b+1)*bucketSpan-off)
		for len(s.buckets) <= b {
			s.buckets = append(s.buckets, runList{})
		}
		before := s.buckets[b].size
		s.buckets[b].insert(off, p[:n], s.bufs)
		s.size += s.buckets[b].size - before
		s.last = max(s.last, off+n)
		off, p = off+n, p[n:]
	}
}

// end is the offset just past the last run, 0 if empty.
func (s *segments) end() int64 { return s.last }

// from returns the runs at or after off, the first one clipped to start
// at off. The slices share the runs' bytes.
func (s *segments) from(off int64) []segment {
	return s.clip(off, s.end())
}

// clip returns the parts of the runs within [lo, hi).
func (s *segments) clip(lo, hi int64) []segment {
	if lo >= hi {
		return nil
	}
	var out []segment
	for b := int(lo / bucketSpan); b < len(s.buckets) && int64(b)*bucketSpan < hi; b++ {
		out = s.buckets[b].appendClip(out, lo, hi)
	}
	return out
}

// runList is one bucket of segments: its runs in offset order.
type runList struct {
	runs []segment
	size int64 // bytes held
}

// insert copies p in at off, replacing what was there; a new run of at
// least half of maxRun gets its buffer from bufs.
func (s *runList) insert(off int64, p []byte, bufs *runBufs) {
	if len(p) == 0 {
		return
	}
	end := off + int64(len(p))
	// Fast path: past every run (sequential writes).
	if n := len(s.runs); n == 0 || s.runs[n-1].end() <= off {
		s.appendRun(off, p, bufs)
		s.size += int64(len(p))
		return
	}
	i := sort.Search(len(s.runs), func(k int) bool { return s.runs[k].end() > off })
	j := i
	for j < len(s.runs) && s.runs[j].off < end {
		j++
	}
	// runs[i:j] overlap [off, end): they give way to what is left of
	// them on either side and the new bytes, in place (readers hold
	// copies of the run headers, from clip, never s.runs itself).
	var repl [3]segment
	k := 0
	var right *segment
	if i < j {
		first, last := s.runs[i], s.runs[j-1]
		for _, r := range s.runs[i:j] {
			s.size -= int64(len(r.data))
		}
		if first.off < off {
			n := off - first.off
			repl[k] = segment{first.off, first.data[:n:n]}
			k++
			s.size += n
		}
		if last.end() > end {
			r := segment{end, last.data[end-last.off:]}
			right = &r
			s.size += int64(len(r.data))
		}
	}
	// The new bytes join the run just before them if they touch it and
	// it has room, as appendRun does.
	var prev *segment
	if k > 0 {
		prev = &repl[k-1]
	} else if i > 0 {
		prev = &s.runs[i-1]
	}
	if prev != nil && prev.end() == off && len(prev.data)+len(p) <= maxRun {
		prev.data = append(prev.data, p...)
	} else {
		repl[k] = segment{off, bufs.clone(p)}
		k++
	}
	s.size += int64(len(p))
	if right != nil {
		repl[k] = *right
		k++
	}
	s.runs = slices.Replace(s.runs, i, j, repl[:k]...)
}

// appendRun adds p at off, which is at or past the end of the last run,
// merging it into that run when they touch and stay within maxRun.
func (s *runList) appendRun(off int64, p []byte, bufs *runBufs) {
	if n := len(s.runs); n > 0 {
		last := &s.runs[n-1]
		if last.end() == off && len(last.data)+len(p) <= maxRun {
			last.data = append(last.data, p...)
			return
		}
	}
	s.runs = append(s.runs, segment{off, bufs.clone(p)})
}

// recycle gives the buffers of the runs that have one to themselves (a
// whole maxRun of capacity: trimmed runs and the tails of split ones
// have less) back to bufs. Only when no one holds any of the runs'
// bytes: a generation that is committed, was sent without a failed
// stream, and has no reader copying from it.
func (s *segments) recycle() {
	for _, b := range s.buckets {
		for _, r := range b.runs {
			s.bufs.put(r.data)
		}
	}
	s.buckets = nil
}

// runBufs keeps 1 MiB buffers (maxRun of capacity) for reuse: the runs
// of large writes, and readahead pages (readahead.go). Writing a
// stream of large writes then allocates nothing once the first buffers
// come back from committed generations: without it, a 1 GiB cp made the
// mount allocate 1 GiB, and its garbage collector ran 45 times a second
// against the memory limit (13% of the mount's CPU) while page faults on
// fresh memory took another 20%. A sync.Pool: what is not reused goes
// back to the heap within two collections.
//
// Reads that may go to a disk with O_DIRECT (readahead pages, the
// blocks of a short-circuit read) take their buffers from huge, huge
// pages, first (getDirect): one 1 MiB direct read from the heap's 4 KiB
// pages is two disk requests, from a huge page one (internal/hugebuf).
type runBufs struct {
	pool sync.Pool
	huge *hugebuf.Pool // nil: none
}

// directLimit is the most memory runBufs maps for direct reads: the
// pages of a few sequential readers at the default readahead window.
// Past it, direct reads use the heap's buffers.
const directLimit = 64 << 20

// newRunBufs returns buffers with up to directLimit of huge pages for
// direct reads, or none if the pool cannot be made.
func newRunBufs() *runBufs {
	huge, err := hugebuf.New(maxRun, 8<<20, directLimit)
	if err != nil {
		panic(err) // constant arguments
	}
	return &runBufs{huge: huge}
}

// getDirect returns an empty buffer of maxRun capacity for a read that
// may be a direct one: a huge-page buffer while there are any.
func (b *runBufs) getDirect() []byte {
	if p := b.huge.Get(); p != nil {
		return p[:0]
	}
	return b.get()
}

// close gives back the huge pages once every buffer is back.
func (b *runBufs) close() { b.huge.Close() }

// clone copies p into a buffer of its own: from the pool when p is at
// least half of maxRun (so that at most half of a pooled buffer's
// capacity goes unused and uncharged to the write budget, as append's
// doubling leaves a grown run), else exactly p's size.
func (b *runBufs) clone(p []byte) []byte {
	if b == nil || len(p) < maxRun/2 {
		return bytes.Clone(p)
	}
	return append(b.get(), p...)
}

// get returns an empty buffer of maxRun capacity, from the pool if it
// has one.
func (b *runBufs) get() []byte {
	if v := b.pool.Get(); v != nil {
		return (*(v.(*[]byte)))[:0]
	}
	return make([]byte, 0, maxRun)
}

// put takes back p's buffer if it is a whole one.
func (b *runBufs) put(p []byte) {
	if b == nil || cap(p) != maxRun || b.huge.Put(p) {
		return
	}
	p = p[:0]
	b.pool.Put(&p)
}

// appendClip appends to out the parts of the runs within [lo, hi).
func (s *runList) appendClip(out []segment, lo, hi int64) []segment {
	i := sort.Search(len(s.runs), func(k int) bool { return s.runs[k].end() > lo })
	for ; i < len(s.runs) && s.runs[i].off < hi; i++ {
		r := s.runs[i]
		a, b := max(r.off, lo), min(r.end(), hi)
		out = append(out, segment{a, r.data[a-r.off : b-r.off]})
	}
	return out
}

// overlay copies into dst, which holds bytes [off, off+len(dst)), the
// parts of runs (in order, later runs winning) that fall inside it.
func overlay(dst []byte, off int64, runs []segment) {
	hi := off + int64(len(dst))
	for _, r := range runs {
		a, b := max(r.off, off), min(r.end(), hi)
		if a < b {
			copy(dst[a-off:b-off], r.data[a-r.off:b-r.off])
		}
	}
}

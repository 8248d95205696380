package client

import (
	"context"
)

// readPage is the unit of readahead: a 1 MiB aligned span of a chunk.
const readPage = 1 << 20

// runSlack is how far before or after the end of a sequential run a
// read may land and still continue it: the kernel's readahead has
// several requests in flight, which come in any order.
const runSlack = 4 * readPage

// pageKey names a page by the replica version it was read from, so a new
// version never serves old bytes.
type pageKey struct {
	chunkID, version uint64
	off              int64 // in the chunk, a multiple of readPage
}

// page is a span of a chunk being fetched or fetched. data and err are
// set before done is closed and not changed after, until the last
// reference goes.
type page struct {
	fileOff int64
	done    chan struct{}
	data    []byte
	err     error

	// refs counts the holders of data, guarded by File.mu: the page
	// cache while the page is in it, the fetch until it ends, and every
	// read using the bytes (a vector read until the kernel has them,
	// ReadAtVec's release). The last one gives buf back to the pool.
	refs int
	buf  []byte // the pooled buffer data was read into; nil if none
}

// readahead is a File's sequential-read detector and page cache. Guarded
// by File.mu.
type readahead struct {
	next     int64 // end of the last read of the sequential run
	streak   int   // reads in a row that continued the run
	exact    bool  // one of them started exactly where the run ended
	pages    map[pageKey]*page
	fetching int      // pages being fetched
	bufs     *runBufs // where whole pages get their buffers
}

// unrefLocked drops one reference to pg; the last returns its buffer.
func (r *readahead) unrefLocked(pg *page) {
	pg.refs--
	if pg.refs == 0 && pg.buf != nil {
		r.bufs.put(pg.buf)
		pg.buf, pg.data = nil, nil
	}
}

// dropLocked takes the page at k out of the cache.
func (r *readahead) dropLocked(k pageKey) {
	if pg := r.pages[k]; pg != nil {
		delete(r.pages, k)
		r.unrefLocked(pg)
	}
}

// observeLocked records a read of n bytes at off and reports whether to
// serve it from the pages. A read continues the run if it starts within
// runSlack of where the run ends. Landing there proves little: a random
// 4 KiB reader of a 512 MiB file does so once in ~64 reads, and a paged
// read fetches a whole page and starts the prefetch, 16 or more times
// the bytes it needs. So the pages are used from the second continuing
// read in a row, once one of the run's reads started exactly where the
// run ended (which a sequential reader's first requests do, and a
// random reader's practically never), or at once for a read from the
// start of the file.
func (r *readahead) observeLocked(off, n int64) bool {
	near := off >= r.next-runSlack && off <= r.next+runSlack
	if near {
		r.streak++
		r.exact = r.exact || off == r.next
		r.next = max(r.next, off+n)
	} else {
		r.streak, r.exact = 0, false
		r.next = off + n
		r.clearLocked()
	}
	return near && (r.streak >= 2 && r.exact || off == 0)
}

func (r *readahead) clearLocked() {
	for k := range r.pages {
		r.dropLocked(k)
	}
}

// maxFetch is how many pages may be fetched at once: the whole window.
// A chunkserver reads a page with one disk read of its own (O_DIRECT),
// so the fetches in flight are the disk's queue depth as well as the
// network's.
func (f *File) maxFetch() int {
	return max(2, int(f.c.cfg.ReadAhead/readPage))
}

// readPaged fills dst with the chunk's bytes at off through the page
// cache, fetching missing pages. With parts not nil, it appends the
// pages' bytes to *parts instead, uncopied, and to *held the pages,
// each with a reference the caller must drop (releasePages); dst then
// only gives the length.
func (f *File) readPaged(ctx context.Context, loc *chunkLoc, off int64, dst []byte, parts *[][]byte, held *[]*page) error {
	for n := len(dst); n > 0; {
		pOff := off - off%readPage
		pg := f.getPage(loc, pOff, true)
		select {
		case <-pg.done:
		case <-ctx.Done():
			f.releasePage(pg)
			return ctxErr(ctx)
		}
		if pg.err != nil {
			f.releasePage(pg)
			return pg.err
		}
		in := off - pOff
		if in >= int64(len(pg.data)) {
			f.releasePage(pg)
			return eio("chunk %d v%d: page at %d holds %d bytes, want offset %d", loc.chunkID, loc.version, pOff, len(pg.data), off)
		}
		from := pg.data[in:min(int64(len(pg.data)), in+int64(n))]
		if parts != nil {
			*parts = append(*parts, from)
			*held = append(*held, pg)
		} else {
			copy(dst[len(dst)-n:], from)
			f.releasePage(pg)
		}
		n -= len(from)
		off += int64(len(from))
	}
	return nil
}

// releasePage drops a reference to pg.
func (f *File) releasePage(pg *page) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ra.unrefLocked(pg)
}

// releasePages drops a reference to each of pages.
func (f *File) releasePages(pages []*page) {
	if len(pages) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, pg := range pages {
		f.ra.unrefLocked(pg)
	}
}

// getPage returns the page at pOff of loc, starting its fetch if it is
// not cached. With ref, the page comes with a reference for the caller
// to drop; without, it may be nil: too many fetches run.
func (f *File) getPage(loc *chunkLoc, pOff int64, ref bool) *page {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := pageKey{loc.chunkID, loc.version, pOff}
	if pg := f.ra.pages[key]; pg != nil {
		if ref {
			pg.refs++
		}
		return pg
	}
	if !ref && f.ra.fetching >= f.maxFetch() {
		return nil
	}
	pg := &page{fileOff: int64(loc.index)*f.cs + pOff, done: make(chan struct{})}
	if ref {
		pg.refs++
	}
	if f.closed {
		pg.err = f.errClosed("read")
		close(pg.done)
		return pg
	}
	pg.refs += 2 // the cache's and the fetch's
	f.ra.pages[key] = pg
	f.ra.fetching++
	f.wg.Add(1)
	n := min(readPage, loc.length-pOff)
	if n == maxRun { // a whole page (readPage is maxRun): a pooled buffer
		pg.buf = f.ra.bufs.getDirect()[:n]
	}
	dst := pg.buf
	go func() {
		defer f.wg.Done()
		// A page is one read of at most one data message, received
		// into its buffer (a pooled one for a whole page).
		data, err := f.readFailoverBuf(f.ctx, loc, pOff, n, dst)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.ra.fetching--
		if err != nil && f.ra.pages[key] == pg {
			f.ra.dropLocked(key) // not cached: the next read tries afresh
		}
		pg.data, pg.err = data, err
		close(pg.done)
		f.ra.unrefLocked(pg)
	}()
	return pg
}

// prefetch starts fetching the pages in [end, end+ReadAhead) after a
// sequential read of [off, end), and drops pages behind off.
func (f *File) prefetch(off, end int64) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	for k, pg := range f.ra.pages {
		if pg.fileOff+readPage <= off-runSlack || pg.fileOff >= end+2*f.c.cfg.ReadAhead {
			f.ra.dropLocked(k)
		}
	}
	limit := min(end+f.c.cfg.ReadAhead, max(f.size, f.wend))
	type want struct {
		loc *chunkLoc
		off int64
	}
	var todo []want
	for pos := end - end%readPage; pos < limit; pos += readPage {
		idx, in := uint64(pos/f.cs), pos%f.cs
		l := f.layout[idx]
		if l == nil || in >= l.length || l.inline != nil {
			continue
		}
		pOff := in - in%readPage
		todo = append(todo, want{l, pOff})
		// Pages restart at each chunk boundary; step to the next one.
		pos = int64(idx)*f.cs + pOff
	}
	f.mu.Unlock()
	for _, w := range todo {
		if f.getPage(w.loc, w.off, false) == nil {
			return
		}
	}
}

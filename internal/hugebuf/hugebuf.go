// Package hugebuf hands out fixed-size buffers for O_DIRECT I/O, carved
// from anonymous mappings that are aligned to 2 MiB and advised
// MADV_HUGEPAGE, so that the kernel backs them with transparent huge
// pages when it can.
//
// Why: the kernel builds a direct read or write from the buffer's
// physical pages. A 1 MiB buffer of the Go heap is 256 scattered 4 KiB
// pages; a virtio disk takes at most 254 segments a request, so each
// such read is split in two and every page costs the device work. In a
// huge page it is one segment. On the benchmark machine (docs/
// BENCHMARKS.md, "Eighth session") fio's O_DIRECT 1 MiB reads of freshly
// written data ran at 1.3-1.7 GB/s from normal memory and 2.9-3.6 GB/s
// from huge pages; writes 1.9 and 2.5-2.7 GB/s.
//
// A Pool maps at most its limit, in slabs, as buffers are first asked
// for, and keeps what it mapped until Close: the memory is reused, never
// given back to the kernel while the pool lives. Past the limit, or where
// the kernel refuses the mapping, Get returns nil and the caller uses
// memory of its own. Buffers that are not the pool's are refused by Put,
// so a caller can hand every buffer back without tracking which is
// which. Aligned is the rule every direct read or write must meet.
package hugebuf

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size and alignment of an x86-64 transparent huge page.
const hugePage = 2 << 20

// DirectAlign is the alignment of O_DIRECT I/O: file offset, length and
// buffer address. 4 KiB satisfies every common device.
const DirectAlign = 4096

// Aligned reports whether p can be read or written with O_DIRECT at file
// offset off.
func Aligned(p []byte, off int64) bool {
	return len(p) > 0 && off%DirectAlign == 0 && len(p)%DirectAlign == 0 &&
		uintptr(unsafe.Pointer(&p[0]))%DirectAlign == 0
}

// Pool is a set of equal buffers from huge-page mappings. Its methods
// may be called concurrently.
type Pool struct {
	size, slab, limit int

	mu      sync.Mutex
	free    [][]byte
	maps    []mapping
	mapped  int  // bytes of slabs mapped
	out     int  // buffers handed out and not yet back
	failed  bool // a mapping was refused: stop asking
	closing bool
}

// mapping is one slab: the mapping as made (mem, for munmap) and its
// 2 MiB-aligned part that buffers are cut from (lo to hi).
type mapping struct {
	mem    []byte
	lo, hi uintptr
}

// New returns a pool of size-byte buffers that maps at most limit bytes,
// slab bytes at a time. size must divide slab, and slab be a multiple of
// 2 MiB.
func New(size, slab, limit int) (*Pool, error) {
	if size <= 0 || slab <= 0 || slab%hugePage != 0 || slab%size != 0 || limit < 0 {
		return nil, fmt.Errorf("hugebuf: buffers of %d bytes in slabs of %d: want a size that divides a slab, a multiple of %d", size, slab, hugePage)
	}
	return &Pool{size: size, slab: slab, limit: limit}, nil
}

// Get returns a buffer of Size bytes and capacity, or nil when the pool
// has none to give: every slab it may map is in use, or the kernel
// refused one. A new slab's memory is zero; a reused buffer holds what
// its last user left. A nil Pool has none.
func (p *Pool) Get() []byte {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return nil
	}
	if len(p.free) == 0 && !p.failed && p.mapped+p.slab <= p.limit {
		p.failed = !p.mapLocked()
	}
	n := len(p.free)
	if n == 0 {
		return nil
	}
	b := p.free[n-1]
	p.free = p.free[:n-1]
	p.out++
	return b
}

// mapLocked maps one more slab and frees its buffers.
func (p *Pool) mapLocked() bool {
	mem, err := unix.Mmap(-1, 0, p.slab+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return false
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	skip := int((hugePage - base%hugePage) % hugePage)
	slab := mem[skip : skip+p.slab : skip+p.slab]
	// Advice, not a promise: without huge pages the buffers work the
	// same, only slower.
	_ = unix.Madvise(slab, unix.MADV_HUGEPAGE)
	lo := base + uintptr(skip)
	p.maps = append(p.maps, mapping{mem: mem, lo: lo, hi: lo + uintptr(p.slab)})
	p.mapped += p.slab
	for off := 0; off < p.slab; off += p.size {
		p.free = append(p.free, slab[off:off+p.size:off+p.size])
	}
	return true
}

// Put takes back a buffer Get returned, whatever its length now, and
// reports whether it was one; false leaves b to the caller. b must not
// be used after Put takes it.
func (p *Pool) Put(b []byte) bool {
	if p == nil || cap(b) != p.size {
		return false
	}
	b = b[:p.size]
	at := uintptr(unsafe.Pointer(&b[0]))
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.maps {
		if at >= m.lo && at < m.hi {
			p.out--
			if p.closing {
				p.unmapIfIdleLocked()
			} else {
				p.free = append(p.free, b)
			}
			return true
		}
	}
	return false
}

// Stats reports the bytes mapped and the buffers handed out and not yet
// back.
func (p *Pool) Stats() (mapped, out int) {
	if p == nil {
		return 0, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mapped, p.out
}

// Close unmaps the pool's memory once every buffer is back: now, or at
// the last Put. Get returns nil from now on.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closing = true
	p.free = nil
	p.unmapIfIdleLocked()
}

func (p *Pool) unmapIfIdleLocked() {
	if p.out > 0 {
		return
	}
	for _, m := range p.maps {
		_ = unix.Munmap(m.mem)
	}
	p.maps, p.mapped = nil, 0
}

// Buffers hands out size-byte buffers for direct I/O: from a Pool while
// it has any, then from the heap (aligned to 4 KiB, pooled). It is what
// a user of a Pool needs that cannot be refused a buffer.
type Buffers struct {
	huge *Pool
	heap sync.Pool
}

// NewBuffers returns buffers of size bytes, with up to limit bytes of
// them in huge pages, mapped 8 MiB at a time (size must divide 8 MiB).
func NewBuffers(size, limit int) (*Buffers, error) {
	huge, err := New(size, 8<<20, limit)
	if err != nil {
		return nil, err
	}
	b := &Buffers{huge: huge}
	b.heap.New = func() any {
		p := make([]byte, size+DirectAlign)
		skip := int((DirectAlign - uintptr(unsafe.Pointer(&p[0]))%DirectAlign) % DirectAlign)
		p = p[skip : skip+size : skip+size]
		return &p
	}
	return b, nil
}

// Get returns a buffer of the size, in huge pages if there are any left.
func (b *Buffers) Get() *[]byte {
	if p := b.huge.Get(); p != nil {
		return &p
	}
	return b.heap.Get().(*[]byte)
}

// Put takes back a buffer Get returned.
func (b *Buffers) Put(p *[]byte) {
	if !b.huge.Put(*p) {
		b.heap.Put(p)
	}
}

// Stats is the huge-page Pool's Stats.
func (b *Buffers) Stats() (mapped, out int) { return b.huge.Stats() }

// Close closes the huge-page Pool: its memory goes back once every
// buffer from it is back. Get still works, from the heap.
func (b *Buffers) Close() { b.huge.Close() }

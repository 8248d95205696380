package client

import (
	"fmt"
	"hash/crc32"
	"slices"
	"syscall"
)

// Small files keep their bytes in the manager's records, not on
// chunkservers (Config.InlineMax). A file of a few KiB written out to
// chunkservers costs an allocation, a replica file on each of three
// chunkservers and a commit; kept inline it costs the commit alone, which
// carries the bytes. Reads get them with the layout. The manager's store
// is the namespace's own, so an inline file is exactly as safe as its
// name; what losing chunkservers costs does not apply to it.
//
// Inline bytes are chunk 0 in another form: the layout shows them as a
// chunkLoc with inline set. The client writes chunk 0 inline when the
// generation being written out, on top of the inline bytes it replaces,
// comes to at most InlineMax bytes; otherwise the chunk goes to
// chunkservers as usual, built from those bytes (rebaseLocked), and its
// commit replaces them. An inline commit names the bytes it was built on
// (their CRC), so that two clients writing one small file do not undo
// each other: the manager refuses a commit built on bytes that changed,
// and the client builds it again on the new ones.

// inlineCRC is the CRC32C the manager knows inline bytes by (0 for
// none, as for no bytes).
func inlineCRC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// inlineBaseLocked returns chunk 0's inline bytes as this client knows
// them, nil if there are none.
func (f *File) inlineBaseLocked() []byte {
	if l := f.layout[0]; l != nil {
		return l.inline
	}
	return nil
}

// inlineCandidateLocked reports whether g, so far, may be written out
// inline: it writes chunk 0, which has no chunk on chunkservers, and with
// the inline bytes under it comes to at most InlineMax bytes.
func (f *File) inlineCandidateLocked(g *gen) bool {
	if g.index != 0 || f.c.cfg.InlineMax <= 0 {
		return false
	}
	l := f.layout[0]
	if l != nil && l.inline == nil {
		return false
	}
	return max(int64(len(f.inlineBaseLocked())), g.data.end()) <= f.c.cfg.InlineMax
}

// streamInline writes out g, of chunk 0, inline if it can: it waits until
// g is sealed or too big, then returns the inline content as g's result
// (true). Otherwise it returns false, having folded any inline bytes
// under g's writes, for the write-out to chunkservers.
func (f *File) streamInline(g *gen) (sealResult, bool, error) {
	f.mu.Lock()
	fresh := f.layoutOK
	f.mu.Unlock()
	if !fresh {
		// What is inline now decides, and a truncate or a lost commit
		// race left the cached layout behind.
		if _, err := f.fetchLayout(f.ctx); err != nil {
			return sealResult{}, false, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.inlineCandidateLocked(g) && !g.sealed {
		f.mu.Unlock()
		select {
		case <-g.wake:
		case <-f.ctx.Done():
			f.mu.Lock()
			return sealResult{}, false, opErr("write", inoPath(f.ino), fmt.Errorf("%w: %w", syscall.EIO, f.ctx.Err()))
		}
		f.mu.Lock()
	}
	if !f.inlineCandidateLocked(g) {
		f.rebaseLocked(g)
		return sealResult{}, false, nil
	}
	base := f.inlineBaseLocked()
	content := make([]byte, max(int64(len(base)), g.data.end()))
	copy(content, base)
	overlay(content, 0, g.data.from(0))
	res := sealResult{length: int64(len(content)), inline: content, inlineBase: inlineCRC(base)}
	if fc := f.first; fc != nil {
		// The create's allocation of chunk 0 goes unused: the commit
		// hands it back.
		f.first = nil
		if fc.taken.CompareAndSwap(false, true) {
			res.release = fc.alloc
		}
	}
	return res, true, nil
}

// rebaseLocked puts chunk 0's inline bytes under g's writes, once, so that
// the chunk g writes out to chunkservers holds them: its commit replaces
// them. (The bytes are not charged to the write budget: at most
// MaxInline per file, for the moment of the write-out.)
func (f *File) rebaseLocked(g *gen) {
	base := f.inlineBaseLocked()
	if g.index != 0 || base == nil || g.rebased {
		return
	}
	g.rebased = true
	merged := slices.Clone(base)
	overlay(merged, 0, g.data.clip(0, int64(len(merged))))
	g.data.insert(0, merged)
}

package client

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/internal/rawread"
	shoalpb "github.com/shoalfs/shoal/proto"
)

const (
	// blockSize is the span of one stored CRC32C.
	blockSize = 64 << 10
	// maxReadRPC bounds the bytes asked of a replica in one ReadChunk,
	// so that one RPCTimeout covers it.
	maxReadRPC = 8 << 20
	// smallRead is the most a read asks of a replica on a ReadChunks
	// stream: its blocks, at most 5 of 64 KiB, fit one message. Larger
	// reads, readahead pages among them, are ReadChunk calls.
	smallRead = 256 << 10
	// layoutMaxAge: a read at or past the end with a layout older than
	// this fetches it again, in case another client grew the file.
	layoutMaxAge = time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShortReplica marks a replica holding fewer bytes than its layout entry.
var errShortReplica = errors.New("replica shorter than its layout entry")

// readPiece is the part of a read that falls in one chunk.
type readPiece struct {
	bufOff   int64 // where it goes in the caller's buffer
	n        int64
	index    uint64
	chunkOff int64     // where it starts in the chunk
	loc      *chunkLoc // nil for a hole (no chunk): zeros
	dataN    int64     // of n, the bytes the replicas hold; the rest are zeros
}

// planRead splits the read of n bytes at off (already clipped to the
// file size) into per-chunk pieces. A chunk missing from layout is a hole;
// bytes past a chunk's length are zeros.
func planRead(off, n, cs int64, layout map[uint64]*chunkLoc) []readPiece {
	var out []readPiece
	for done := int64(0); done < n; {
		pos := off + done
		idx := uint64(pos / cs)
		in := pos % cs
		m := min(n-done, cs-in)
		pc := readPiece{bufOff: done, n: m, index: idx, chunkOff: in}
		if l := layout[idx]; l != nil {
			pc.loc = l
			pc.dataN = max(0, min(m, l.length-in))
		}
		out = append(out, pc)
		done += m
	}
	return out
}

// ReadAt reads len(p) bytes at off, or up to the end of the file with
// io.EOF. It sees this File's own writes, synced or not. Data is read
// from the first replica of each chunk that answers with every block's
// CRC32C right; a replica that is missing or corrupt is reported to the
// manager.
func (f *File) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	_, _, n, err := f.readAt(ctx, p, off, false)
	return n, err
}

// ReadAtVec is ReadAt, except that the n bytes read may be returned as
// parts, in order, rather than in p: slices of p and of the pages a
// sequential reader's readahead fetched, which are not copied into p.
// The caller must not modify the parts, and must call release once it
// is done with them: until then the pages are not reused. With nil
// parts, the bytes are p[:n].
func (f *File) ReadAtVec(ctx context.Context, p []byte, off int64) (parts [][]byte, release func(), n int, err error) {
	parts, held, n, err := f.readAt(ctx, p, off, true)
	if len(held) == 0 {
		return parts, func() {}, n, err
	}
	var once sync.Once
	return parts, func() { once.Do(func() { f.releasePages(held) }) }, n, err
}

// readAt is ReadAt; with vec, ReadAtVec, and held lists the pages the
// parts come from, each with a reference for the caller.
func (f *File) readAt(ctx context.Context, p []byte, off int64, vec bool) (parts [][]byte, held []*page, n int, err error) {
	if off < 0 {
		return nil, nil, 0, opErr("read", inoPath(f.ino), syscall.EINVAL)
	}
	if len(p) == 0 {
		return nil, nil, 0, nil
	}
	parts, held, n, err, again := f.readOnce(ctx, p, off, false, vec)
	if !again {
		return parts, held, n, err
	}
	// The cached layout may be out of date, or every replica may be
	// unreachable for now (chunkservers restarting, a node not yet
	// declared dead): fetch the layout again and retry, backing off, until
	// the op timeout.
	deadline := time.Now().Add(f.c.cfg.OpTimeout)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		parts, held, n, err, again = f.readOnce(ctx, p, off, true, vec)
		if !again {
			return parts, held, n, err
		}
		if time.Now().Add(wait).After(deadline) {
			f.log.WithError(err).WithField("offset", off).Warn("read failed on every replica until the op timeout")
			return parts, held, n, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, 0, opErr("read", inoPath(f.ino), ctxErr(ctx))
		case <-t.C:
		}
	}
}

// readOnce is one readAt with the layout as cached (fresh: fetched
// first). again says that trying again, with a fresh layout, might do
// better: no replica of some chunk delivered, or (with a cached layout)
// the file seemed to end early. With vec, a sequential read with no
// buffered writes in its range returns its bytes as parts, pages
// uncopied.
func (f *File) readOnce(ctx context.Context, p []byte, off int64, fresh, vec bool) (parts [][]byte, held []*page, n int, err error, again bool) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, nil, 0, f.errClosed("read"), false
	}
	need := fresh || !f.layoutOK
	f.mu.Unlock()
	if need {
		if _, err := f.fetchLayout(ctx); err != nil {
			return nil, nil, 0, err, false
		}
	}

	f.mu.Lock()
	size := max(f.size, f.wend)
	if off >= size {
		old := !fresh && time.Since(f.layoutAt) > layoutMaxAge
		f.mu.Unlock()
		return nil, nil, 0, io.EOF, old
	}
	want := min(int64(len(p)), size-off)
	plan := planRead(off, want, f.cs, f.layout)
	ov := f.overlaysLocked(off, want)
	seq := f.ra.observeLocked(off, want)
	if len(ov) > 0 {
		f.overlaysHeld++
		defer func() {
			f.mu.Lock()
			f.overlaysHeld--
			f.mu.Unlock()
		}()
	}
	f.mu.Unlock()

	buf := p[:want]
	paged := seq && f.c.cfg.ReadAhead > 0
	vec = vec && paged && len(ov) == 0
	for _, pc := range plan {
		dst := buf[pc.bufOff : pc.bufOff+pc.n]
		clear(dst[pc.dataN:])
		var err error
		switch {
		case pc.dataN == 0:
		case pc.loc.inline != nil:
			copy(dst[:pc.dataN], pc.loc.inline[pc.chunkOff:])
		case vec:
			err = f.readPaged(ctx, pc.loc, pc.chunkOff, dst[:pc.dataN], &parts, &held)
		case paged:
			err = f.readPaged(ctx, pc.loc, pc.chunkOff, dst[:pc.dataN], nil, nil)
		default:
			err = f.readChunk(ctx, pc.loc, pc.chunkOff, dst[:pc.dataN])
		}
		if err != nil {
			// A fresh layout may list other replicas; past that, only
			// unreachable replicas are worth waiting for.
			again := ctx.Err() == nil && (!fresh || !errors.Is(err, errReplicasBad))
			f.releasePages(held)
			return nil, nil, 0, opErr("read", inoPath(f.ino), err), again
		}
		if vec {
			// What readPaged did not add: a hole's zeros or inline bytes,
			// both in dst; zeros past a paged chunk's length.
			if pc.dataN == 0 || pc.loc.inline != nil {
				parts = append(parts, dst)
			} else if pc.dataN < pc.n {
				parts = append(parts, dst[pc.dataN:])
			}
		}
	}
	overlay(buf, off, ov)
	if paged {
		f.prefetch(off, off+want)
	}
	if want < int64(len(p)) {
		return parts, held, int(want), io.EOF, false
	}
	return parts, held, int(want), nil, false
}

// overlaysLocked returns the buffered writes that fall in [off, off+n),
// at file offsets, oldest first, so that copying them in order leaves
// the newest bytes.
func (f *File) overlaysLocked(off, n int64) []segment {
	var out []segment
	first, last := uint64(off/f.cs), uint64((off+n-1)/f.cs)
	for idx := first; idx <= last; idx++ {
		base := int64(idx) * f.cs
		lo, hi := max(off-base, 0), min(off+n-base, f.cs)
		gens := f.sealed[idx]
		if g := f.open[idx]; g != nil {
			gens = append(gens[:len(gens):len(gens)], g)
		}
		for _, g := range gens {
			for _, r := range g.data.clip(lo, hi) {
				out = append(out, segment{off: base + r.off, data: r.data})
			}
		}
	}
	return out
}

// readChunk fills dst with the chunk's bytes at off, from the first
// replica that delivers them intact.
func (f *File) readChunk(ctx context.Context, loc *chunkLoc, off int64, dst []byte) error {
	for len(dst) > 0 {
		m := min(len(dst), maxReadRPC)
		if err := f.readFailover(ctx, loc, off, dst[:m]); err != nil {
			return err
		}
		dst = dst[m:]
		off += int64(m)
	}
	return nil
}

func (f *File) readFailover(ctx context.Context, loc *chunkLoc, off int64, dst []byte) error {
	_, err := f.readFailoverBuf(ctx, loc, off, int64(len(dst)), dst)
	return err
}

// readFailoverBuf reads n bytes of the chunk at off from the first
// replica that delivers them intact, into dst if it is not nil, else
// into a buffer it returns (the received message's own, when one
// message holds exactly the range: readahead pages take it as it is).
func (f *File) readFailoverBuf(ctx context.Context, loc *chunkLoc, off, n int64, dst []byte) ([]byte, error) {
	if len(loc.replicas) == 0 {
		return nil, eio("chunk %d v%d (index %d): no live replica", loc.chunkID, loc.version, loc.index)
	}
	var why []string
	unreachable := false
	for _, r := range f.c.localFirst(loc.replicas) {
		b, err := f.c.readReplica(ctx, r.addr, loc.chunkID, loc.version, off, n, dst)
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, ctxErr(ctx)
		}
		if isGone(err) {
			f.c.reportBad(loc.chunkID, loc.version, r.nodeID, err.Error())
		} else {
			unreachable = true
		}
		why = append(why, fmt.Sprintf("%s: %v", r.addr, err))
	}
	err := eio("chunk %d v%d (index %d) bytes [%d, %d): all %d replicas failed: %s",
		loc.chunkID, loc.version, loc.index, off, off+n, len(loc.replicas), strings.Join(why, "; "))
	if !unreachable {
		err = fmt.Errorf("%w (%w)", err, errReplicasBad)
	}
	return nil, err
}

// localFirst returns replicas with those on this host first (the
// others in their order), so that a reader reads from its own host's
// disk when it can; replicas itself if short-circuit reads are off or
// none is local.
func (c *Client) localFirst(replicas []location) []location {
	if c.local == nil || len(replicas) < 2 {
		return replicas
	}
	for i, r := range replicas {
		if c.local.onHost(r.addr) {
			if i == 0 {
				return replicas
			}
			out := make([]location, 0, len(replicas))
			out = append(out, r)
			out = append(out, replicas[:i]...)
			return append(out, replicas[i+1:]...)
		}
	}
	return replicas
}

// errReplicasBad marks a read that every replica answered, each with
// missing or corrupt data: waiting will not help, unlike a read whose
// replicas could not be reached.
var errReplicasBad = errors.New("every replica is missing or corrupt")

// readReplica reads bytes [off, off+n) of one replica, verifying every
// block it receives against its CRC32C, into dst (of length n) if it is
// not nil, else into a buffer of its own. The read goes over a raw
// connection (rawconn.go) if the chunkserver speaks that protocol. Over
// gRPC, a read of at most smallRead bytes is one request on a
// long-lived ReadChunks stream, and a larger one, or one of a
// chunkserver that predates ReadChunks, a ReadChunk of its own; with a
// nil dst, the data of the first message is returned uncopied if it
// holds the whole range.
func (c *Client) readReplica(ctx context.Context, addr string, chunkID, version uint64, off, n int64, dst []byte) ([]byte, error) {
	if c.local != nil {
		if b, ok := c.local.read(addr, chunkID, version, off, n, dst); ok {
			return b, nil
		}
	}
	conn, err := c.pool.conn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	// Exact: a small read gets its own bytes, not the whole 64 KiB
	// blocks around them; it is still checked against the stored CRCs.
	rreq := rawread.Request{ChunkID: chunkID, Version: version, Offset: uint64(off), Length: uint64(n), Exact: true}
	r := replicaRead{off: off, end: off + n, got: off, dst: dst}
	if ok, err := conn.readRaw(ctx, rreq, &r); ok {
		if err != nil {
			return nil, err
		}
		return r.result()
	}
	req := rreq.Proto()
	if n <= smallRead {
		m, err := conn.read(ctx, req)
		if err == nil {
			if err := r.add(m); err != nil {
				return nil, err
			}
			return r.result()
		}
		if status.Code(err) != codes.Unimplemented {
			return nil, fromStatus(err)
		}
	}
	stream, err := conn.cs.ReadChunk(ctx, req)
	if err != nil {
		return nil, fromStatus(err)
	}
	for r.got < r.end {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fromStatus(err)
		}
		if err := r.add(m); err != nil {
			return nil, err
		}
	}
	return r.result()
}

// replicaRead gathers the messages of one read of [off, end) of a
// replica.
type replicaRead struct {
	off, end int64
	got      int64  // bytes before got are filled
	dst      []byte // for [off, end); nil until the first bytes come if the caller gave none
}

// slot returns where to receive the n data bytes of a message at chunk
// offset mo: their place in dst when they fall in the range, so that add
// copies nothing, else a buffer of their own.
func (r *replicaRead) slot(mo int64, n int) []byte {
	if mo < r.off || mo+int64(n) > r.end || n == 0 {
		return make([]byte, n)
	}
	if r.dst == nil {
		r.dst = make([]byte, r.end-r.off)
	}
	return r.dst[mo-r.off : mo-r.off+int64(n)]
}

// add verifies m and takes its bytes of the range. Messages must come
// in order, with no gap.
func (r *replicaRead) add(m *shoalpb.ReadChunkResponse) error {
	mo := int64(m.GetOffset())
	if err := verifyMessage(m); err != nil {
		return fmt.Errorf("%w (message at chunk offset %d)", err, mo)
	}
	if mo > r.got {
		return fmt.Errorf("%w: message at offset %d leaves a gap after %d", errShortReplica, mo, r.got)
	}
	data := m.GetData()
	a, b := r.got, min(mo+int64(len(data)), r.end)
	if a >= b {
		return nil
	}
	if r.dst == nil {
		if mo == r.off && b == r.end {
			r.dst, r.got = data[:b-mo], b // one message holds it all: take it
			return nil
		}
		r.dst = make([]byte, r.end-r.off)
	}
	if from, to := data[a-mo:b-mo], r.dst[a-r.off:b-r.off]; &from[0] != &to[0] { // else received in place (slot)
		copy(to, from)
	}
	r.got = b
	return nil
}

// result is the range read, or an error if the replica ended early.
func (r *replicaRead) result() ([]byte, error) {
	if r.got < r.end {
		return nil, fmt.Errorf("%w: got bytes up to %d of [%d, %d)", errShortReplica, r.got, r.off, r.end)
	}
	return r.dst, nil
}

// verifyMessage checks the data of a ReadChunk message against the
// stored CRC32C of each 64 KiB block it touches. The data may start and
// end inside a block (an exact read): the CRC32C of the block's bytes
// before it (HeadCrc) and after it (TailCrc, TailLength bytes), sent by
// the chunkserver, complete the block's CRC32C. A whole-block message
// has neither.
func verifyMessage(m *shoalpb.ReadChunkResponse) error {
	data, crcs := m.GetData(), m.GetCrcs()
	headLen := int(m.GetOffset() % blockSize)
	tailLen := int(m.GetTailLength())
	if tailLen >= blockSize || (headLen == 0 && m.GetHeadCrc() != 0) || (tailLen == 0 && m.GetTailCrc() != 0) {
		return fmt.Errorf("%w: head of %d bytes with crc32c %08x, tail of %d with %08x",
			ErrChecksum, headLen, m.GetHeadCrc(), tailLen, m.GetTailCrc())
	}
	total := headLen + len(data) + tailLen // bytes of the blocks touched
	nb := (total + blockSize - 1) / blockSize
	if len(crcs) != nb || (nb > 1 && headLen+len(data) <= (nb-1)*blockSize) {
		return fmt.Errorf("%w: %d checksums for %d bytes at block offset %d and a tail of %d",
			ErrChecksum, len(crcs), len(data), headLen, tailLen)
	}
	for i := range nb {
		// Block i spans data[lo:hi], after the head in block 0.
		lo, hi := max(i*blockSize-headLen, 0), min((i+1)*blockSize-headLen, len(data))
		crc := uint32(0)
		if i == 0 {
			crc = m.GetHeadCrc()
		}
		crc = crc32.Update(crc, castagnoli, data[lo:hi])
		if i == nb-1 && tailLen > 0 {
			crc = crc32Combine(crc, m.GetTailCrc(), int64(tailLen))
		}
		if crc != crcs[i] {
			return fmt.Errorf("%w: block %d: crc32c %08x, stored %08x", ErrChecksum, i, crc, crcs[i])
		}
	}
	return nil
}

// castagnoliPoly is the CRC32C polynomial, bit-reversed as hash/crc32
// uses it.
const castagnoliPoly = 0x82f63b78

// crc32Combine returns the CRC32C of a||b from crcA (of a), crcB (of b)
// and the length of b: crcA·x^(8·lenB) + crcB in GF(2)[x] mod the
// polynomial (zlib's crc32_combine; the CRC's pre- and post-inversion
// cancel out).
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	return multModP(xPow8N(lenB), crcA) ^ crcB
}

// multModP returns a·b mod the polynomial, both bit-reversed (x^0 is the
// top bit).
func multModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow8N returns x^(8n) mod the polynomial, by squaring.
func xPow8N(n int64) uint32 {
	p := uint32(1) << 31  // x^0
	sq := uint32(1) << 23 // x^8
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			p = multModP(sq, p)
		}
		sq = multModP(sq, sq)
	}
	return p
}

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	shoalpb "github.com/shoalfs/shoal/proto"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
)

const (
	// maxWriteAttempts bounds the chains tried for one chunk generation.
	maxWriteAttempts = 6
	// maxCommitBatch bounds the chunks committed by one CommitChunks call.
	maxCommitBatch = 32
	// maxStaleRetries bounds the rewrites of a chunk that keeps losing
	// commit races.
	maxStaleRetries = 3
	// fanOutMax is the largest sealed generation sent to its replicas
	// side by side rather than down a chain (see push).
	fanOutMax = 256 << 10
)

// gen is one generation of writes to one chunk: the bytes to go into the
// next version of it. It is open while it takes writes and sealed once
// it is on its way out (streamed, closed on the chain, committed). A
// chunk has at most one open generation and any number of sealed ones,
// which commit in order. The bytes stay in memory until the commit, so a
// failed chain can be replaced and the data sent again, and reads see
// them meanwhile.
//
// An eager generation streams its data to the chain as it arrives: it is
// made for writes that append at the chunk's end (the sequential case),
// and it only ever takes writes at or past its own end, so its runs go
// out in offset order. Other generations (random writes, overwrites) send
// their dirty runs when sealed.
type gen struct {
	index uint64
	eager bool
	after *gen          // an earlier generation of this chunk; it must finish first
	wake  chan struct{} // buffered(1): new data or sealed
	done  chan struct{} // closed when committed or failed

	// Guarded by File.mu.
	data    segments
	charge  int64 // bytes charged to the budget
	sealed  bool
	rebased bool // holds chunk 0's inline bytes (rebaseLocked)
	started bool // its goroutine runs
	ready   bool // streamed (res or err is set); the committer may take it
	res     sealResult
	err     error

	// A stream that carried its data failed: gRPC may still hold the
	// bytes of messages queued on it, so they are not recycled.
	sendFailed atomic.Bool
}

// sealResult is what a chain reported for a sealed replica set.
type sealResult struct {
	chunkID, version uint64
	length           int64
	summary          uint32
	nodes            []location // the replicas that acknowledged

	// For chunk 0 kept inline (chunkID 0): its bytes, the CRC of the
	// inline bytes they were built on, and the create's allocation of
	// chunk 0 to hand back.
	inline     []byte
	inlineBase uint32
	release    *shoalpb.AllocateChunkResponse
}

func (g *gen) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// WriteAt buffers p at off. The data goes out to chunkservers in the
// background; it is durable only after Sync or Close. WriteAt blocks,
// rather than fails, while the client's write buffer is full. It returns
// the error of an earlier write that failed in the background.
func (f *File) WriteAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, opErr("write", inoPath(f.ino), syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.c.buf.reserve(ctx, int64(len(p)), f.c.sealAll); err != nil {
		return 0, opErr("write", inoPath(f.ino), err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, f.errClosed("write")
	}
	if f.werr != nil {
		return 0, f.werr
	}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		idx := uint64(pos / f.cs)
		in := pos % f.cs
		n := min(int64(len(p)-done), f.cs-in)
		f.writeChunkLocked(idx, in, p[done:done+int(n)])
		done += int(n)
	}
	f.wend = max(f.wend, off+int64(len(p)))
	f.mtime = 0 // commits set the time they happen again
	f.pending.Mtime = nil
	return len(p), nil
}

// writeChunkLocked puts p at offset in of chunk idx.
func (f *File) writeChunkLocked(idx uint64, in int64, p []byte) {
	g := f.open[idx]
	if g != nil && g.eager && in < g.data.end() {
		// A write behind an eager generation's stream: let that one go
		// and start a generation that patches it.
		f.sealLocked(g)
		g = nil
	}
	if g == nil {
		g = &gen{
			index: idx,
			eager: in == f.chunkEndLocked(idx),
			wake:  make(chan struct{}, 1),
			done:  make(chan struct{}),
			data:  segments{bufs: f.c.runs},
		}
		if s := f.sealed[idx]; len(s) > 0 {
			g.after = s[len(s)-1]
		}
		f.open[idx] = g
		if g.eager {
			f.startLocked(g)
		}
	}
	before := g.data.size
	g.data.insert(in, p)
	delta := g.data.size - before
	g.charge += delta
	f.c.buf.add(delta)
	if g.eager {
		g.signal()
		if g.data.end() >= f.cs {
			f.sealLocked(g)
		}
	}
}

// chunkEndLocked is where chunk idx will end once everything written to
// it so far is committed: an append there can stream.
func (f *File) chunkEndLocked(idx uint64) int64 {
	var end int64
	if l := f.layout[idx]; l != nil {
		end = l.length
	}
	for _, g := range f.sealed[idx] {
		end = max(end, g.data.end())
	}
	return end
}

// sealLocked closes g to writes and queues it for its commit.
func (f *File) sealLocked(g *gen) {
	if g.sealed {
		return
	}
	if f.open[g.index] == g {
		delete(f.open, g.index)
	}
	g.sealed = true
	f.sealed[g.index] = append(f.sealed[g.index], g)
	f.queue = append(f.queue, g)
	f.c.buf.seal(g.charge)
	if g.started {
		g.signal()
	} else {
		f.startLocked(g)
	}
}

// sealOpen seals every open generation (the write buffer is full).
func (f *File) sealOpen() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	for _, g := range f.open {
		f.sealLocked(g)
	}
}

func (f *File) startLocked(g *gen) {
	g.started = true
	f.wg.Add(1)
	go f.runGen(g)
}

// runGen streams g to a chain (after its predecessor in the chunk has
// finished), then hands it to the committer.
func (f *File) runGen(g *gen) {
	defer f.wg.Done()
	if g.after != nil {
		select {
		case <-g.after.done:
		case <-f.ctx.Done():
		}
	}
	res, err := f.stream(g)
	f.mu.Lock()
	if err != nil {
		f.log.WithField("chunk_index", g.index).Warnf("write: %v", err)
		if f.werr == nil {
			f.werr = err
		}
		f.sealLocked(g) // an eager one may still be open; fail it now
	}
	g.res, g.err, g.ready = res, err, true
	start := !f.commits
	f.commits = true
	f.mu.Unlock()
	if start {
		f.commitLoop()
	}
}

// stream writes g to a chain of chunkservers, replacing failed nodes
// until enough replicas seal it or none are left.
func (f *File) stream(g *gen) (sealResult, error) {
	if g.index == 0 {
		if res, ok, err := f.streamInline(g); ok || err != nil {
			return res, err
		}
	}
	var exclude []string
	var lastErr error
	for attempt := 1; attempt <= maxWriteAttempts; attempt++ {
		alloc, err := f.allocation(g, exclude)
		if err != nil {
			if lastErr != nil {
				err = fmt.Errorf("%w (after: %v)", err, lastErr)
			}
			return sealResult{}, err
		}
		need := max(int(alloc.GetMinReplicas()), 1)
		if len(alloc.GetTargets()) < need {
			err := enospc("%d usable chunkservers for chunk %d, need %d", len(alloc.GetTargets()), g.index, need)
			if lastErr != nil {
				err = fmt.Errorf("%w (after: %v)", err, lastErr)
			}
			return sealResult{}, opErr("write", inoPath(f.ino), err)
		}
		res, failed, err := f.push(g, alloc)
		if err == nil {
			if len(res.nodes) < len(alloc.GetTargets()) {
				f.log.WithFields(logrus.Fields{"chunk": res.chunkID, "version": res.version}).
					Infof("chunk sealed on %d of %d replicas; the healer tops it up", len(res.nodes), len(alloc.GetTargets()))
			}
			return res, nil
		}
		if f.ctx.Err() != nil {
			return sealResult{}, opErr("write", inoPath(f.ino), fmt.Errorf("%w: %w", syscall.EIO, err))
		}
		lastErr = err
		f.log.WithFields(logrus.Fields{"chunk_index": g.index, "attempt": attempt, "failed": failed}).
			Warnf("pipeline failed, rebuilding it: %v", err)
		for _, n := range failed {
			if n != "" && !slices.Contains(exclude, n) {
				exclude = append(exclude, n)
			}
		}
	}
	return sealResult{}, opErr("write", inoPath(f.ino),
		eio("chunk %d: gave up after %d pipelines: %v", g.index, maxWriteAttempts, lastErr))
}

// firstChunkMaxAge is the age up to which an allocation handed out with
// a create is used. The manager keeps an allocation for 30 minutes
// (metadata's pendingTTL) from when it made it, and the commit may come
// long after the write-out begins (a chunk streamed as it is written): one
// this young leaves nearly all the time a fresh allocation would have.
const firstChunkMaxAge = time.Minute

// firstChunk is chunk 0's allocation, handed out with the file's create.
type firstChunk struct {
	alloc *shoalpb.AllocateChunkResponse
	at    time.Time   // when the create was sent
	taken atomic.Bool // by a write-out: the allocation is used once at most
}

// allocation returns the allocation for g's next write-out: for the first
// write-out of chunk 0 of a new file, the one its create handed out, if
// still young; otherwise a fresh one from the manager.
func (f *File) allocation(g *gen, exclude []string) (*shoalpb.AllocateChunkResponse, error) {
	alloc := f.takeFirst(g)
	if alloc == nil {
		return f.c.allocate(f.ctx, f.ino, g.index, exclude)
	}
	// Without an allocation's round trip, the write-out of a small file
	// would start before the file is closed, and go down a chain rather
	// than to its replicas side by side (see push): wait until it is
	// sealed or no longer small.
	if err := f.settle(g); err != nil {
		return nil, err
	}
	f.c.minReplicas.Store(int32(alloc.GetMinReplicas()))
	return alloc, nil
}

// takeFirst returns the create's allocation if g may use it: g writes
// chunk 0, which the file has no version of, and the allocation is young
// and not taken. Once a write-out of chunk 0 has asked, it is never
// offered again: a retry allocates afresh.
func (f *File) takeFirst(g *gen) *shoalpb.AllocateChunkResponse {
	if g.index != 0 {
		return nil
	}
	f.mu.Lock()
	fc := f.first
	f.first = nil
	noChunk := f.layout[0] == nil
	f.mu.Unlock()
	if fc == nil || !fc.taken.CompareAndSwap(false, true) || !noChunk || time.Since(fc.at) >= firstChunkMaxAge {
		return nil
	}
	return fc.alloc
}

// settle waits until g is sealed or holds more than fanOutMax bytes.
func (f *File) settle(g *gen) error {
	for {
		f.mu.Lock()
		ok := g.sealed || g.data.end() > fanOutMax
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-g.wake:
		case <-f.ctx.Done():
			return opErr("write", inoPath(f.ino), fmt.Errorf("%w: %w", syscall.EIO, f.ctx.Err()))
		}
	}
}

// allocate asks the manager for the next version of chunk idx and its
// targets. Retrying it is harmless: an unused allocation is an orphan the
// healer removes.
func (c *Client) allocate(ctx context.Context, ino Ino, idx uint64, exclude []string) (*shoalpb.AllocateChunkResponse, error) {
	var resp *shoalpb.AllocateChunkResponse
	err := c.do(ctx, "allocate chunk", fmt.Sprintf("ino %d chunk %d", ino, idx), func(ctx context.Context) (err error) {
		resp, err = c.mgr.AllocateChunk(ctx, &shoalpb.AllocateChunkRequest{Ino: uint64(ino), Index: idx, ExcludeNodes: exclude})
		return err
	})
	if err == nil {
		c.minReplicas.Store(int32(resp.GetMinReplicas()))
	}
	return resp, err
}

// push writes g's data to the allocation's targets and reports which
// sealed it. It returns the node ids to leave out of the next attempt
// when too few did.
//
// Normally the data goes down one chain: to the first target, which
// forwards it to the next, and so on, so the client sends each byte once.
// A small generation already sealed when its allocation arrives (a small
// file: tar writes it and closes it at once) goes instead to every target
// at the same time, each a chain of one: its latency is one hop, not one
// per replica, and sending a few KiB three times costs nothing.
func (f *File) push(g *gen, alloc *shoalpb.AllocateChunkResponse) (sealResult, []string, error) {
	targets := alloc.GetTargets()
	f.mu.Lock()
	fanOut := g.sealed && g.data.end() <= fanOutMax && len(targets) > 1
	f.mu.Unlock()
	var resp *shoalpb.WriteChunkResponse
	if fanOut {
		resp = f.sendEach(g, alloc)
	} else {
		var err error
		if resp, err = f.send(g, alloc, targets); err != nil {
			return sealResult{}, []string{targets[0].GetNodeId()}, err
		}
	}
	return f.result(g, alloc, resp, fanOut)
}

// sendEach sends g to every target as a chain of one, at once, and
// merges their replies as a chain's would be: one result per target, in
// target order. A replica that sealed other bytes than the first one to
// succeed counts as failed.
func (f *File) sendEach(g *gen, alloc *shoalpb.AllocateChunkResponse) *shoalpb.WriteChunkResponse {
	targets := alloc.GetTargets()
	resps := make([]*shoalpb.WriteChunkResponse, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { resps[i], errs[i] = f.send(g, alloc, []*shoalpb.Location{t}) })
	}
	wg.Wait()
	merged := &shoalpb.WriteChunkResponse{}
	var ref *shoalpb.WriteChunkResponse
	for i, t := range targets {
		r := resps[i]
		switch {
		case errs[i] != nil:
			merged.Replicas = append(merged.Replicas, &shoalpb.ReplicaResult{Addr: t.GetAddr(), NodeId: t.GetNodeId(), Error: errs[i].Error()})
			continue
		case len(r.GetReplicas()) != 1:
			merged.Replicas = append(merged.Replicas, &shoalpb.ReplicaResult{Addr: t.GetAddr(), NodeId: t.GetNodeId(),
				Error: fmt.Sprintf("%d results from a chain of one", len(r.GetReplicas()))})
			continue
		case ref == nil:
			ref, merged.Length, merged.Summary = r, r.GetLength(), r.GetSummary()
		case r.GetLength() != ref.GetLength() || r.GetSummary() != ref.GetSummary():
			merged.Replicas = append(merged.Replicas, &shoalpb.ReplicaResult{Addr: t.GetAddr(), NodeId: t.GetNodeId(),
				Error: fmt.Sprintf("sealed %d bytes with summary %08x, another replica %d with %08x", r.GetLength(), r.GetSummary(), ref.GetLength(), ref.GetSummary())})
			continue
		}
		merged.Replicas = append(merged.Replicas, r.GetReplicas()[0])
	}
	return merged
}

// send streams g's data to chain[0], which forwards it down chain[1:],
// and returns the chain's reply.
func (f *File) send(g *gen, alloc *shoalpb.AllocateChunkResponse, chain []*shoalpb.Location) (*shoalpb.WriteChunkResponse, error) {
	head := chain[0]
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	wd := newWatchdog(f.c.cfg.RPCTimeout, cancel)
	defer wd.stop()
	fail := func(err error) (*shoalpb.WriteChunkResponse, error) {
		g.sendFailed.Store(true)
		if wd.fired.Load() {
			err = fmt.Errorf("%w: stalled for more than %v", syscall.ETIMEDOUT, wd.d)
		}
		return nil, fmt.Errorf("chunkserver %s: %w", head.GetAddr(), fromStatus(err))
	}

	cs, err := f.c.pool.get(head.GetAddr())
	if err != nil {
		return fail(err)
	}
	wd.arm()
	stream, err := cs.WriteChunk(ctx)
	wd.disarm()
	if err != nil {
		return fail(err)
	}
	hdr := &shoalpb.WriteChunkHeader{
		ChunkId:     alloc.GetChunkId(),
		Version:     alloc.GetVersion(),
		BaseVersion: alloc.GetBaseVersion(),
		BaseLength:  alloc.GetBaseLength(),
	}
	for _, t := range chain[1:] {
		hdr.Chain = append(hdr.Chain, t.GetAddr())
	}
	send := func(m *shoalpb.WriteChunkRequest) error {
		wd.arm()
		defer wd.disarm()
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream; its status says why.
				_, err = stream.CloseAndRecv()
			}
			return err
		}
		return nil
	}
	if err := send(&shoalpb.WriteChunkRequest{Header: hdr}); err != nil {
		return fail(err)
	}
	var sent int64 // everything before this chunk offset is sent
	for {
		f.mu.Lock()
		runs := g.data.from(sent)
		sealed := g.sealed
		f.mu.Unlock()
		for _, r := range runs {
			for o := 0; o < len(r.data); o += maxRun {
				d := r.data[o:min(o+maxRun, len(r.data))]
				if err := send(&shoalpb.WriteChunkRequest{Offset: uint64(r.off) + uint64(o), Data: d}); err != nil {
					return fail(err)
				}
			}
			sent = r.end()
		}
		if len(runs) > 0 {
			continue
		}
		if sealed {
			break
		}
		select {
		case <-g.wake:
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	wd.arm()
	resp, err := stream.CloseAndRecv()
	wd.disarm()
	if err != nil {
		return fail(err)
	}
	return resp, nil
}

// result turns the targets' reply into g's seal result, or, if too few
// replicas sealed it, into an error and the nodes to blame: in a chain
// the first that failed (those after it were never reached), with a
// fan-out every one that failed.
func (f *File) result(g *gen, alloc *shoalpb.AllocateChunkResponse, resp *shoalpb.WriteChunkResponse, fanOut bool) (sealResult, []string, error) {
	targets := alloc.GetTargets()
	byAddr := make(map[string]*shoalpb.Location, len(targets))
	for _, t := range targets {
		byAddr[t.GetAddr()] = t
	}
	res := sealResult{
		chunkID: alloc.GetChunkId(),
		version: alloc.GetVersion(),
		length:  int64(resp.GetLength()),
		summary: resp.GetSummary(),
	}
	if res.length == 0 {
		f.mu.Lock()
		res.length = max(int64(alloc.GetBaseLength()), g.data.end())
		f.mu.Unlock()
	}
	// Results come in chain order, and a chain breaks at one place: the
	// first failed node is the one to replace. The nodes after it were
	// never reached and are not to blame (HDFS picks its bad datanode the
	// same way).
	var failed, why []string
	seen := make(map[string]bool)
	broken := false
	for _, r := range resp.GetReplicas() {
		t := byAddr[r.GetAddr()]
		id := r.GetNodeId()
		if id == "" && t != nil {
			id = t.GetNodeId()
		}
		seen[r.GetAddr()] = true
		if r.GetOk() {
			res.nodes = append(res.nodes, location{nodeID: id, addr: r.GetAddr()})
			continue
		}
		if !broken || fanOut {
			failed = append(failed, id)
			broken = true
		}
		why = append(why, fmt.Sprintf("%s: %s", r.GetAddr(), r.GetError()))
	}
	for _, t := range targets {
		if !seen[t.GetAddr()] {
			failed = append(failed, t.GetNodeId())
			why = append(why, t.GetAddr()+": no result")
		}
	}
	need := max(int(alloc.GetMinReplicas()), 1)
	if len(res.nodes) < need {
		// Too few to commit: this allocation is abandoned, and the
		// replicas that did seal would hold their space until the
		// manager's pending allocation expires. Delete them now.
		f.c.dropAbandoned(res.chunkID, res.version, res.nodes)
		return sealResult{}, failed, eio("chunk %d v%d sealed on %d of %d replicas, need %d: %s",
			res.chunkID, res.version, len(res.nodes), len(targets), need, strings.Join(why, "; "))
	}
	return res, nil, nil
}

// commitLoop commits ready generations from the head of the queue, in
// seal order, in batches, until the head is not ready. One goroutine at
// a time runs it (File.commits).
func (f *File) commitLoop() {
	for {
		f.mu.Lock()
		var batch []*gen
		for _, g := range f.queue {
			if !g.ready || len(batch) == maxCommitBatch {
				break
			}
			batch = append(batch, g)
		}
		if len(batch) == 0 {
			f.commits = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()

		f.commitBatch(batch)

		f.mu.Lock()
		f.queue = f.queue[len(batch):]
		for _, g := range batch {
			f.finishLocked(g)
		}
		f.mu.Unlock()
	}
}

// commitBatch records the good generations of batch with the manager,
// setting g.err on those that fail. A generation that lost a race with
// another writer (STALE_VERSION) is written again on a fresh version and
// committed alone.
func (f *File) commitBatch(batch []*gen) {
	var good []*gen
	for _, g := range batch {
		if g.err == nil {
			good = append(good, g)
		}
	}
	if len(good) == 0 {
		return
	}
	err := f.commit(good)
	if err == nil {
		return
	}
	if !errors.Is(err, ErrStaleVersion) {
		for _, g := range good {
			g.err = err
		}
		return
	}
	for _, g := range good {
		err := f.commit([]*gen{g})
		for try := 0; errors.Is(err, ErrStaleVersion) && try < maxStaleRetries; try++ {
			f.log.WithField("chunk_index", g.index).Info("chunk commit raced with another writer; writing it again")
			if g.index == 0 {
				// What chunk 0 is now (inline or not, which bytes)
				// decides how it is written again.
				f.mu.Lock()
				f.invalidateLocked()
				f.mu.Unlock()
			}
			var res sealResult
			if res, err = f.stream(g); err == nil {
				f.mu.Lock()
				g.res = res
				f.mu.Unlock()
				err = f.commit([]*gen{g})
			}
		}
		g.err = err
	}
}

// commit sends one CommitChunks for gens.
func (f *File) commit(gens []*gen) error {
	f.commitMu.Lock()
	defer f.commitMu.Unlock()
	f.mu.Lock()
	mtime, pend := f.mtime, f.pending
	f.pending, f.sending = SetAttr{}, pend // this commit carries them
	f.mu.Unlock()
	if mtime == 0 {
		mtime = time.Now().UnixNano()
	}
	req := &shoalpb.CommitChunksRequest{Ino: uint64(f.ino), MtimeNs: mtime}
	if pend != (SetAttr{}) {
		req.Set = setAttrToPB(f.ino, pend)
	}
	for _, g := range gens {
		if g.res.inline != nil {
			req.Chunks = append(req.Chunks, &shoalpb.ChunkCommit{
				Length: uint64(len(g.res.inline)), Inline: g.res.inline, InlineBase: g.res.inlineBase,
			})
			req.MinSize = max(req.MinSize, uint64(len(g.res.inline)))
			if r := g.res.release; r != nil {
				req.Release = append(req.Release, &shoalpb.ChunkRef{ChunkId: r.GetChunkId(), Version: r.GetVersion()})
			}
			continue
		}
		c := &shoalpb.ChunkCommit{
			Index:   g.index,
			ChunkId: g.res.chunkID,
			Version: g.res.version,
			Length:  uint64(g.res.length),
			Summary: g.res.summary,
		}
		for _, n := range g.res.nodes {
			c.NodeIds = append(c.NodeIds, n.nodeID)
		}
		req.Chunks = append(req.Chunks, c)
		req.MinSize = max(req.MinSize, g.index*uint64(f.cs)+uint64(g.res.length))
	}
	var resp *shoalpb.CommitChunksResponse
	err := f.c.do(f.ctx, "commit", inoPath(f.ino), func(ctx context.Context) (err error) {
		resp, err = f.c.mgr.CommitChunks(ctx, req)
		return err
	})
	f.mu.Lock()
	f.sending = SetAttr{}
	if err != nil {
		f.pending = mergeAttr(pend, f.pending) // for the next commit or Flush
		f.mu.Unlock()
		return err
	}
	f.attr, f.stale = attrFromPB(resp.GetAttr()), false
	f.size = max(f.size, int64(f.attr.Size))
	f.mu.Unlock()
	return nil
}

// finishLocked retires a committed or failed generation: its layout
// entry replaces the cached one, its bytes leave the buffer.
func (f *File) finishLocked(g *gen) {
	if s := f.sealed[g.index]; len(s) > 0 {
		f.sealed[g.index] = slices.DeleteFunc(s, func(x *gen) bool { return x == g })
		if len(f.sealed[g.index]) == 0 {
			delete(f.sealed, g.index)
		}
	}
	if g.err != nil {
		if f.werr == nil {
			f.werr = g.err
		}
	} else {
		loc := &chunkLoc{
			index:    g.index,
			chunkID:  g.res.chunkID,
			version:  g.res.version,
			length:   g.res.length,
			replicas: g.res.nodes,
			inline:   g.res.inline,
		}
		f.layout[g.index] = loc
		if loc.inline == nil {
			f.unsynced = append(f.unsynced, loc)
		}
		f.size = max(f.size, int64(g.index)*f.cs+g.res.length)
		f.layoutV++
	}
	f.c.buf.release(g.charge, true)
	g.charge = 0
	if g.err == nil && !g.sendFailed.Load() && f.overlaysHeld == 0 {
		g.data.recycle()
	}
	close(g.done)
}

// watchdog cancels a stream whose current step (a send, the final seal)
// takes longer than d: a chunkserver that stops reading.
type watchdog struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(time.Hour, func() {
		w.fired.Store(true)
		cancel()
	})
	w.t.Stop()
	return w
}

func (w *watchdog) arm()    { w.t.Reset(w.d) }
func (w *watchdog) disarm() { w.t.Stop() }
func (w *watchdog) stop()   { w.t.Stop() }

// isGone reports whether err says a replica is missing or bad, rather
// than its node merely unreachable.
func isGone(err error) bool {
	if errors.Is(err, ErrChecksum) || errors.Is(err, errShortReplica) {
		return true
	}
	switch codeOf(err) {
	case codes.NotFound, codes.DataLoss:
		return true
	}
	return false
}

package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Client talks to one shoal cluster: the manager for the namespace and
// chunk map, the chunkservers for data. It is safe for concurrent use.
type Client struct {
	cfg  Config
	log  *logrus.Entry
	conn *grpc.ClientConn
	mgr  shoalpb.ManagerClient
	pool *connPool
	buf  *budget
	runs *runBufs // buffers of large buffered writes, reused
	// local reads replicas on this host from their files; nil unless
	// Config.LocalReads.
	local *localReads

	// ctx is the lifetime of background work (files' seal and readahead
	// goroutines, bad-replica reports); Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // bad-replica reports

	// minReplicas is the manager's min_replicas, from the last
	// allocation (0 until one): how many synced replicas Sync needs.
	minReplicas atomic.Int32

	mu     sync.Mutex // guards files and closed
	files  map[*File]struct{}
	closed bool
}

func dial(addr string) (*grpc.ClientConn, error) { return transport.Dial(addr) }

// New returns a client of the manager at cfg.Manager. Zero fields of cfg
// take their defaults. It does not wait for the manager: connections are
// made on first use. The caller must Close the client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	conn, err := dial(cfg.Manager)
	if err != nil {
		return nil, fmt.Errorf("client: manager address %q: %w", cfg.Manager, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:    cfg,
		log:    cfg.Log.WithField("component", "client"),
		conn:   conn,
		mgr:    shoalpb.NewManagerClient(conn),
		pool:   newConnPool(),
		buf:    newBudget(cfg.WriteBuffer),
		runs:   newRunBufs(),
		ctx:    ctx,
		cancel: cancel,
		files:  make(map[*File]struct{}),
	}
	if cfg.LocalReads {
		c.local = newLocalReads(c.log, cfg.RPCTimeout, c.runs)
	}
	return c, nil
}

// Close aborts the background work of files left open (their unsynced
// writes are lost), waits for it, and closes every connection. Close may
// be called more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	files := make([]*File, 0, len(c.files))
	for f := range c.files {
		files = append(files, f)
	}
	c.mu.Unlock()
	for _, f := range files {
		f.mu.Lock()
		f.closed = true // start no more goroutines
		f.ra.clearLocked()
		f.mu.Unlock()
	}
	c.cancel()
	for _, f := range files {
		f.wg.Wait()
	}
	c.wg.Wait()
	if c.local != nil {
		c.local.close()
	}
	c.runs.close()
	err := c.conn.Close()
	if perr := c.pool.close(); err == nil {
		err = perr
	}
	return err
}

// retryable reports whether a manager call that failed with code may
// succeed if sent again: the manager is down, restarting, or slow.
func retryable(code codes.Code) bool {
	return code == codes.Unavailable || code == codes.DeadlineExceeded
}

// retry runs fn until it succeeds, fails with an error that is not
// retryable, or cfg.OpTimeout passes. Each attempt gets its own context
// bounded by cfg.RPCTimeout. The error returned has been through
// fromStatus. ambiguous reports whether an attempt failed in a way that
// leaves open whether the manager applied it (a lost reply); callers of
// non-idempotent operations use it to interpret the error of a later
// attempt (see doc.go, "Retries").
func (c *Client) retry(ctx context.Context, fn func(ctx context.Context) error) (ambiguous bool, err error) {
	if c.ctx.Err() != nil {
		return false, fmt.Errorf("%w (%w)", ErrClosed, syscall.EBADF)
	}
	start := time.Now()
	deadline := start.Add(c.cfg.OpTimeout)
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
		err = fn(actx)
		cancel()
		if err == nil {
			return ambiguous, nil
		}
		if ctx.Err() != nil {
			return ambiguous, ctxErr(ctx)
		}
		code := codeOf(err)
		if !retryable(code) {
			return ambiguous, fromStatus(err)
		}
		ambiguous = true
		wait = min(wait*2, time.Second)
		sleep := wait/2 + rand.N(wait/2+1)
		if time.Now().Add(sleep).After(deadline) {
			return ambiguous, fmt.Errorf("%w: manager at %s unreachable: %d attempts in %v: %v",
				syscall.EIO, c.cfg.Manager, attempt, time.Since(start).Round(time.Millisecond), err)
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return ambiguous, ctxErr(ctx)
		case <-t.C:
		}
	}
}

// ctxErr is the error for an operation whose caller's context ended:
// context.Canceled as it is (the mount maps it to EINTR), and a caller's
// deadline as EIO that also matches context.DeadlineExceeded.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", syscall.EIO, err)
	}
	return err
}

// do is retry for operations that may safely be repeated, wrapped in an
// OpError.
func (c *Client) do(ctx context.Context, op, path string, fn func(ctx context.Context) error) error {
	_, err := c.retry(ctx, fn)
	return opErr(op, path, err)
}

// register and unregister track open files, so that buffer pressure can
// flush all of them and Close can wait for them.
func (c *Client) register(f *File) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%w (%w)", ErrClosed, syscall.EBADF)
	}
	c.files[f] = struct{}{}
	return nil
}

func (c *Client) unregister(f *File) {
	c.mu.Lock()
	delete(c.files, f)
	c.mu.Unlock()
}

// sealAll seals the open chunk generations of every open file: the
// write buffer is full and nothing is on its way out to make room.
func (c *Client) sealAll() {
	c.mu.Lock()
	files := make([]*File, 0, len(c.files))
	for f := range c.files {
		files = append(files, f)
	}
	c.mu.Unlock()
	for _, f := range files {
		f.sealOpen()
	}
}

// reportBad tells the manager, in the background, that a replica failed
// a read. Failing to tell it is logged, not returned: the read has
// already moved on to another replica.
func (c *Client) reportBad(chunkID, version uint64, node, reason string) {
	c.background(func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RPCTimeout)
		defer cancel()
		_, err := c.mgr.ReportBadReplica(ctx, &shoalpb.ReportBadReplicaRequest{
			ChunkId: chunkID, Version: version, NodeId: node, Reason: reason,
		})
		if err != nil {
			c.log.WithFields(logrus.Fields{"chunk": chunkID, "version": version, "node": node}).
				Warnf("report bad replica: %v", err)
		}
	})
}

// background runs fn in a goroutine the client owns (Close waits for
// it), unless the client is closed already.
func (c *Client) background(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// dropAbandoned deletes, in the background, the replicas of a chunk
// version the client sealed on too few nodes and will never commit, so a
// failed write does not keep their space (which matters most when the
// cluster is nearly full). A delete that fails is harmless: the manager
// reconciles the replica as an orphan later.
func (c *Client) dropAbandoned(chunkID, version uint64, nodes []location) {
	if len(nodes) == 0 {
		return
	}
	c.background(func() {
		for _, n := range nodes {
			cs, err := c.pool.get(n.addr)
			if err == nil {
				ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RPCTimeout)
				_, err = cs.DeleteChunks(ctx, &shoalpb.DeleteChunksRequest{Chunks: []*shoalpb.ChunkReport{{ChunkId: chunkID, Version: version}}})
				cancel()
			}
			if err != nil {
				c.log.WithFields(logrus.Fields{"chunk": chunkID, "version": version, "node": n.addr}).
					Debugf("delete abandoned replica: %v", err)
			}
		}
	})
}

// connPool holds one connection per chunkserver address, each with a
// goroutine that watches its state (chunkConn.watch); close waits for
// them.
type connPool struct {
	mu     sync.Mutex // guards conns and closed
	conns  map[string]*chunkConn
	closed bool
	wg     sync.WaitGroup // the watchers
}

func newConnPool() *connPool { return &connPool{conns: make(map[string]*chunkConn)} }

// get returns the chunkserver client for addr, dialing it lazily.
func (p *connPool) get(addr string) (shoalpb.ChunkServerClient, error) {
	c, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return c.cs, nil
}

// conn returns the connection to addr, dialing it lazily.
func (p *connPool) conn(addr string) (*chunkConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("%w (%w)", ErrClosed, syscall.EBADF)
	}
	c, ok := p.conns[addr]
	if !ok {
		cc, err := dial(addr)
		if err != nil {
			return nil, fmt.Errorf("%w: chunkserver address %q: %v", syscall.EIO, addr, err)
		}
		c = newChunkConn(addr, cc)
		p.conns[addr] = c
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			c.watch()
		}()
	}
	return c, nil
}

func (p *connPool) close() error {
	p.mu.Lock()
	p.closed = true
	var first error
	for addr, c := range p.conns {
		if err := c.cc.Close(); err != nil && first == nil {
			first = fmt.Errorf("client: close connection to %s: %w", addr, err)
		}
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
	return first
}

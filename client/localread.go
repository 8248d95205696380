package client

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"

	"github.com/shoalfs/shoal/internal/hugebuf"
	"github.com/shoalfs/shoal/internal/localread"
)

// Short-circuit reads (Config.LocalReads): a replica on a chunkserver of
// this host is read from its file, whose descriptors the chunkserver
// hands over a Unix socket (package localread), instead of through a TCP
// connection and the chunkserver's copy of every byte. Every block read
// is checked against its stored CRC32C, as over TCP. Any failure (no
// socket, a replica the chunkserver will not open, a bad read or
// checksum) sends that read over TCP to the same chunkserver, which then
// reports what is wrong, so this path never decides that a replica is
// bad.

const (
	// maxLocalReplicas bounds the open replicas kept (two descriptors
	// each).
	maxLocalReplicas = 128
	// localTTL is how long an opened replica is read before the
	// chunkserver is asked again. A version's bytes never change, but
	// the chunkserver may delete it once a newer one is written; the
	// question bounds how long a reader holding an old layout reads the
	// old version, which over TCP ends when the chunkserver deletes it.
	localTTL = 10 * time.Second
	// localRetry is how long a chunkserver with no local socket (remote,
	// or down) is left alone before the next try.
	localRetry = 10 * time.Second
)

// localReads is a client's short-circuit reader: the chunkservers found
// on this host, and the replicas opened on them.
type localReads struct {
	log     *logrus.Entry
	timeout time.Duration // of one open; Config.RPCTimeout
	bufs    *runBufs

	mu       sync.Mutex
	nodes    map[string]*localNode
	replicas map[localKey]*list.Element // of *localReplica, most recently used first
	lru      list.List
	closed   bool

	reads atomic.Int64 // reads served, for tests and the debug log
}

type localKey struct {
	addr             string
	chunkID, version uint64
}

// localNode is one chunkserver's socket.
type localNode struct {
	mu       sync.Mutex // serializes opens on conn
	conn     *net.UnixConn
	retryAt  time.Time // while conn is nil: no dial before
	announce sync.Once
}

// localReplica is an open replica, shared by the reads using it.
type localReplica struct {
	key    localKey
	r      *localread.Replica
	opened time.Time
	refs   int // the cache's (until dropped) and each read's; guarded by localReads.mu
}

func newLocalReads(log *logrus.Entry, timeout time.Duration, bufs *runBufs) *localReads {
	return &localReads{log: log, timeout: timeout, bufs: bufs,
		nodes: make(map[string]*localNode), replicas: make(map[localKey]*list.Element)}
}

// onHost reports whether the chunkserver at addr is on this host: its
// socket answers (dialled now if it was not, unless a dial failed in the
// last localRetry).
func (l *localReads) onHost(addr string) bool {
	node := l.node(addr)
	if node == nil {
		return false
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	return l.dialLocked(node, addr)
}

// node returns the state of the chunkserver at addr; nil once closed.
func (l *localReads) node(addr string) *localNode {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	n := l.nodes[addr]
	if n == nil {
		n = &localNode{}
		l.nodes[addr] = n
	}
	return n
}

// dialLocked connects node's socket if it is not connected and may be
// tried, reporting whether it is connected. node.mu is held.
func (l *localReads) dialLocked(node *localNode, addr string) bool {
	if node.conn != nil {
		return true
	}
	if time.Now().Before(node.retryAt) {
		return false
	}
	conn, err := localread.Dial(addr)
	if err != nil {
		node.retryAt = time.Now().Add(localRetry) // not on this host, or down
		return false
	}
	node.conn = conn
	node.announce.Do(func() {
		l.log.WithField("addr", addr).Info("chunkserver is on this host: reading its replicas from their files")
	})
	return true
}

// read reads [off, off+n) of replica (chunkID, version) on the
// chunkserver at addr from its file, into dst if not nil, verifying every
// block. ok is false if it could not, and the caller reads over TCP.
func (l *localReads) read(addr string, chunkID, version uint64, off, n int64, dst []byte) (b []byte, ok bool) {
	rep := l.acquire(localKey{addr, chunkID, version})
	if rep == nil {
		return nil, false
	}
	b, err := l.readReplica(rep.r, off, n, dst)
	l.release(rep, err != nil)
	if err != nil {
		l.log.WithError(err).WithFields(logrus.Fields{"addr": addr, "chunk": chunkID, "version": version}).
			Warn("short-circuit read failed; reading over the network")
		return nil, false
	}
	l.reads.Add(1)
	return b, true
}

// acquire returns the open replica of key with a reference, opening it
// if needed; nil if it cannot be read locally.
func (l *localReads) acquire(key localKey) *localReplica {
	if rep, ok := l.cached(key); rep != nil || !ok {
		return rep
	}
	node := l.node(key.addr)
	if node == nil {
		return nil
	}
	// One open per replica at a time: the reads of a sequential reader's
	// pages all want the same replica at once.
	node.mu.Lock()
	defer node.mu.Unlock()
	if rep, ok := l.cached(key); rep != nil || !ok {
		return rep
	}
	r := l.openLocked(node, key)
	if r == nil {
		return nil
	}
	rep := &localReplica{key: key, r: r, opened: time.Now(), refs: 2} // the cache's and the caller's
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		r.Close()
		return nil
	}
	l.replicas[key] = l.lru.PushFront(rep)
	for l.lru.Len() > maxLocalReplicas {
		l.dropLocked(l.lru.Back())
	}
	return rep
}

// cached returns key's replica with a reference if it is open and was
// opened less than localTTL ago (dropping it if it is older); ok is
// false once the reader is closed.
func (l *localReads) cached(key localKey) (rep *localReplica, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false
	}
	e := l.replicas[key]
	if e == nil {
		return nil, true
	}
	rep = e.Value.(*localReplica)
	if time.Since(rep.opened) >= localTTL {
		l.dropLocked(e)
		return nil, true
	}
	l.lru.MoveToFront(e)
	rep.refs++
	return rep, true
}

// openLocked asks node's chunkserver for key's replica; nil if it is
// not on this host or will not hand it over. node.mu is held.
func (l *localReads) openLocked(node *localNode, key localKey) *localread.Replica {
	if !l.dialLocked(node, key.addr) {
		return nil
	}
	node.conn.SetDeadline(time.Now().Add(l.timeout))
	r, err := localread.Open(node.conn, key.chunkID, key.version)
	if err == nil && r.BlockSize != blockSize {
		err = fmt.Errorf("replica in blocks of %d bytes, want %d", r.BlockSize, blockSize)
		r.Close()
		r = nil
	}
	if err != nil {
		// A broken connection, or a chunkserver whose store does not hand
		// out files, is left alone for a while; a replica it refuses
		// (missing, corrupt) is its read's business, over TCP.
		var lerr *localread.Error
		if !errors.As(err, &lerr) || lerr.Code == codes.Unimplemented {
			node.conn.Close()
			node.conn, node.retryAt = nil, time.Now().Add(localRetry)
		}
		l.log.WithError(err).WithFields(logrus.Fields{"addr": key.addr, "chunk": key.chunkID, "version": key.version}).
			Debug("short-circuit open failed; reading over the network")
		return nil
	}
	return r
}

// release drops a read's reference to rep, and rep from the cache if
// the read failed.
func (l *localReads) release(rep *localReplica, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if failed {
		if e := l.replicas[rep.key]; e != nil && e.Value == rep {
			l.dropLocked(e)
		}
	}
	l.unrefLocked(rep)
}

func (l *localReads) dropLocked(e *list.Element) {
	rep := l.lru.Remove(e).(*localReplica)
	delete(l.replicas, rep.key)
	l.unrefLocked(rep)
}

func (l *localReads) unrefLocked(rep *localReplica) {
	rep.refs--
	if rep.refs == 0 {
		rep.r.Close()
	}
}

// close closes every socket, and every replica once its reads end.
func (l *localReads) close() {
	l.mu.Lock()
	l.closed = true
	for l.lru.Len() > 0 {
		l.dropLocked(l.lru.Front())
	}
	nodes := l.nodes
	l.nodes = map[string]*localNode{}
	l.mu.Unlock()
	for _, n := range nodes {
		n.mu.Lock()
		if n.conn != nil {
			n.conn.Close()
			n.conn = nil
		}
		n.mu.Unlock()
	}
}

// readReplica reads [off, off+n) of r: the whole blocks around it, with
// O_DIRECT when they and the buffer allow, each checked against its
// stored CRC32C.
func (l *localReads) readReplica(r *localread.Replica, off, n int64, dst []byte) ([]byte, error) {
	if off < 0 || n <= 0 || off+n > r.Length {
		return nil, fmt.Errorf("%w: bytes [%d, %d) of a replica of %d", errShortReplica, off, off+n, r.Length)
	}
	lo := off / blockSize * blockSize
	hi := min((off+n+blockSize-1)/blockSize*blockSize, r.Length)
	whole := lo == off && hi == off+n // whole blocks: read in place
	var buf []byte
	switch {
	case whole:
		if dst == nil {
			dst = make([]byte, n)
		}
		buf = dst[:n]
	case hi-lo <= maxRun && l.bufs != nil:
		pooled := l.bufs.getDirect()
		defer l.bufs.put(pooled)
		buf = pooled[:hi-lo]
	default:
		buf = make([]byte, hi-lo)
	}
	f := r.File
	if r.Direct != nil && hugebuf.Aligned(buf, r.DataOffset+lo) {
		f = r.Direct
	}
	if _, err := f.ReadAt(buf, r.DataOffset+lo); err != nil {
		return nil, fmt.Errorf("data [%d, %d): %w", lo, hi, err)
	}
	first, nb := lo/blockSize, (hi-lo+blockSize-1)/blockSize
	table := make([]byte, 4*nb)
	if _, err := r.File.ReadAt(table, r.TableOffset+4*first); err != nil {
		return nil, fmt.Errorf("checksums of blocks [%d, %d): %w", first, first+nb, err)
	}
	for i := range nb {
		blk := buf[i*blockSize : min((i+1)*blockSize, int64(len(buf)))]
		if got, want := crc32.Checksum(blk, castagnoli), binary.LittleEndian.Uint32(table[4*i:]); got != want {
			return nil, fmt.Errorf("%w: block %d: crc32c %08x, stored %08x", ErrChecksum, first+i, got, want)
		}
	}
	if whole {
		return buf, nil
	}
	if dst == nil {
		dst = make([]byte, n)
	}
	return dst[:copy(dst[:n], buf[off-lo:])], nil
}

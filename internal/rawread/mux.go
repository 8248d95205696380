package rawread

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// sniffTimeout bounds how long a new connection may take to send its
// first bytes.
const sniffTimeout = 10 * time.Second

// Mux splits a listener between gRPC and this protocol by each
// connection's first bytes: connections that open with Magic go to
// serve, one goroutine each, and the rest are handed to gRPC through
// Accept, their first bytes put back. Mux is the net.Listener to give
// gRPC's Serve.
//
// Close (which gRPC's Stop and GracefulStop call) closes the listener
// and every raw connection; Wait then waits for the goroutines Mux
// started. A raw read in flight is cut: the reader fails over to another
// replica.
type Mux struct {
	lis   net.Listener
	serve func(net.Conn)
	grpc  chan net.Conn
	done  chan struct{}

	mu     sync.Mutex // guards raw and closed
	raw    map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop, sniffers and serve calls

	closeOnce sync.Once
	closeErr  error
}

// NewMux starts accepting on lis. serve answers a raw connection, whose
// Magic has been read, until it fails or is closed; Mux closes it after.
func NewMux(lis net.Listener, serve func(net.Conn)) *Mux {
	m := &Mux{lis: lis, serve: serve, grpc: make(chan net.Conn), done: make(chan struct{}), raw: map[net.Conn]struct{}{}}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	var backoff time.Duration
	for {
		conn, err := m.lis.Accept()
		if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
			// Out of file descriptors, say: wait and accept again, as
			// gRPC's own Serve does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
				continue
			case <-m.done:
				t.Stop()
				return
			}
		}
		if err != nil {
			// The listener is closed (Close) or broken: either way gRPC's
			// Accept ends, and Serve returns.
			m.Close()
			return
		}
		backoff = 0
		if !m.track(conn, true) {
			conn.Close()
			return
		}
		go m.route(conn)
	}
}

// track adds conn to the raw connections (add) or removes it, and in
// adding counts a goroutine for it; it reports false once Mux is closed.
func (m *Mux) track(conn net.Conn, add bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !add {
		delete(m.raw, conn)
		return true
	}
	if m.closed {
		return false
	}
	m.raw[conn] = struct{}{}
	m.wg.Add(1)
	return true
}

// route reads conn's first bytes and serves it or hands it to gRPC.
func (m *Mux) route(conn net.Conn) {
	defer m.wg.Done()
	first := make([]byte, len(Magic))
	conn.SetReadDeadline(time.Now().Add(sniffTimeout))
	n, err := io.ReadFull(conn, first)
	conn.SetReadDeadline(time.Time{})
	if err == nil && bytes.Equal(first, []byte(Magic)) {
		m.serve(conn)
		m.track(conn, false)
		conn.Close()
		return
	}
	m.track(conn, false) // gRPC owns it now
	if err != nil && n == 0 {
		conn.Close()
		return
	}
	// Not ours: gRPC reads the bytes again and judges them.
	select {
	case m.grpc <- &prefixConn{Conn: conn, pre: first[:n]}:
	case <-m.done:
		conn.Close()
	}
}

// Accept returns the next gRPC connection.
func (m *Mux) Accept() (net.Conn, error) {
	select {
	case c := <-m.grpc:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Addr is the listener's address.
func (m *Mux) Addr() net.Addr { return m.lis.Addr() }

// Close stops accepting and closes the raw connections. It may be called
// more than once.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		close(m.done)
		for c := range m.raw {
			c.Close()
		}
		m.mu.Unlock()
		m.closeErr = m.lis.Close()
	})
	return m.closeErr
}

// Wait waits for the goroutines Mux started, after Close.
func (m *Mux) Wait() { m.wg.Wait() }

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoalfs/shoal/internal/rawread"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// rawConn is a connection of the raw read protocol (package rawread) to
// one chunkserver, carrying one read at a time. Reads go over these
// rather than gRPC: the data of a frame is received from the socket
// straight into the buffer the read returns.
type rawConn struct {
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte
	crcs []uint32
}

// dialRaw opens a raw connection to addr; rawread.ErrUnsupported if the
// chunkserver answers only gRPC.
func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{c: c, br: bufio.NewReaderSize(c, 32<<10)}
	stop := bindCtx(ctx, c)
	err = rawread.Open(c, rc.br)
	if !stop() {
		c.Close()
		return nil, ctxErr(ctx)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return rc, nil
}

// bindCtx gives c's I/O ctx's deadline, and ends it at once (a deadline
// in the past) if ctx ends first. stop, as context.AfterFunc's, reports
// false if ctx ended: the connection is then unusable.
func bindCtx(ctx context.Context, c net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// readRaw reads r's range of the replica over a raw connection, into
// r. ok is false if the chunkserver does not speak the protocol: the
// caller reads over gRPC instead.
func (c *chunkConn) readRaw(ctx context.Context, req rawread.Request, r *replicaRead) (ok bool, err error) {
	rc, reused, err := c.takeRaw(ctx)
	if errors.Is(err, rawread.ErrUnsupported) {
		c.mu.Lock()
		c.noRaw = true
		c.mu.Unlock()
		return false, nil
	}
	if err != nil {
		return true, err
	}
	got, connOK, err := rc.read(ctx, req, r)
	if err != nil && reused && !got && ctx.Err() == nil {
		// An idle connection the chunkserver closed (a restart): one
		// fresh try before calling the replica unreachable.
		rc.c.Close()
		if rc, err = dialRaw(ctx, c.addr); err != nil {
			return true, err
		}
		_, connOK, err = rc.read(ctx, req, r)
	}
	if connOK {
		c.putRaw(rc)
	} else {
		rc.c.Close()
	}
	return true, err
}

// read sends req and receives its answer into r. got says some of the
// answer came; connOK that the connection may carry another read.
func (rc *rawConn) read(ctx context.Context, req rawread.Request, r *replicaRead) (got, connOK bool, err error) {
	stop := bindCtx(ctx, rc.c)
	got, connOK, err = rc.roundTrip(req, r)
	if !stop() {
		return got, false, ctxErr(ctx)
	}
	return got, connOK, err
}

func (rc *rawConn) roundTrip(req rawread.Request, r *replicaRead) (got, connOK bool, err error) {
	rc.wbuf = rawread.AppendRequest(rc.wbuf[:0], req)
	if _, err := rc.c.Write(rc.wbuf); err != nil {
		return false, false, err
	}
	for {
		h, err := rawread.ReadHeader(rc.br, rc.crcs)
		if err != nil {
			return got, false, err
		}
		got = true
		rc.crcs = h.CRCs
		if h.Code != codes.OK {
			return true, true, fromStatus(rawread.ReadError(rc.br, h))
		}
		data := r.slot(int64(h.Offset), h.DataLen)
		if _, err := io.ReadFull(rc.br, data); err != nil {
			return true, false, err
		}
		m := &shoalpb.ReadChunkResponse{Offset: h.Offset, Data: data, Crcs: h.CRCs,
			HeadCrc: h.HeadCRC, TailCrc: h.TailCRC, TailLength: h.TailLength}
		if err := r.add(m); err != nil {
			// The rest of the answer is still coming: drop the connection.
			return true, h.Last(), err
		}
		if h.Last() {
			return true, true, nil
		}
	}
}

// takeRaw returns an idle raw connection (reused) or dials one.
func (c *chunkConn) takeRaw(ctx context.Context) (rc *rawConn, reused bool, err error) {
	c.mu.Lock()
	if c.noRaw {
		c.mu.Unlock()
		return nil, false, rawread.ErrUnsupported
	}
	if n := len(c.rawIdle); n > 0 {
		rc := c.rawIdle[n-1]
		c.rawIdle = c.rawIdle[:n-1]
		c.mu.Unlock()
		return rc, true, nil
	}
	c.mu.Unlock()
	rc, err = dialRaw(ctx, c.addr)
	if err != nil && !errors.Is(err, rawread.ErrUnsupported) {
		err = fmt.Errorf("raw read connection: %w", err)
	}
	return rc, false, err
}

// putRaw keeps rc for the next read, or closes it.
func (c *chunkConn) putRaw(rc *rawConn) {
	c.mu.Lock()
	keep := !c.shut && len(c.rawIdle) < maxIdleStreams
	if keep {
		c.rawIdle = append(c.rawIdle, rc)
	}
	c.mu.Unlock()
	if !keep {
		rc.c.Close()
	}
}

package chunkserver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/shoalfs/shoal/chunkserver/storetest"
	"github.com/shoalfs/shoal/internal/rawread"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// rawConn is a test's connection of the raw read protocol.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rc := &rawConn{c: c, br: bufio.NewReader(c)}
	if err := rawread.Open(c, rc.br); err != nil {
		t.Fatalf("open a raw connection to %s: %v", addr, err)
	}
	return rc
}

// read sends req and returns its answer's frames as ReadChunk messages,
// or the error frame's error.
func (rc *rawConn) read(req *shoalpb.ReadChunkRequest) ([]*shoalpb.ReadChunkResponse, error) {
	r := rawread.Request{ChunkID: req.ChunkId, Version: req.Version, Offset: req.Offset, Length: req.Length, Exact: req.Exact}
	if _, err := rc.c.Write(rawread.AppendRequest(nil, r)); err != nil {
		return nil, err
	}
	var out []*shoalpb.ReadChunkResponse
	for {
		h, err := rawread.ReadHeader(rc.br, nil)
		if err != nil {
			return nil, err
		}
		if h.Code != codes.OK {
			return out, rawread.ReadError(rc.br, h)
		}
		m := &shoalpb.ReadChunkResponse{Offset: h.Offset, Crcs: h.CRCs, HeadCrc: h.HeadCRC, TailCrc: h.TailCRC,
			TailLength: h.TailLength, Data: make([]byte, h.DataLen)}
		if _, err := io.ReadFull(rc.br, m.Data); err != nil {
			return nil, err
		}
		out = append(out, m)
		if h.Last() {
			return out, nil
		}
	}
}

// A raw read answers with the messages ReadChunk streams for the same
// request, frame for frame, over one connection that serves read after
// read; a read at the end is one empty frame.
func TestRawReadMatchesReadChunk(t *testing.T) {
	m := startManager(t)
	n := startNodes(t, m, 1)[0]
	ctx := t.Context()
	data := storetest.Data(3, 3<<20+12345)
	if _, err := writeChunk(ctx, n.client, header(9, 1), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, n.addr)
	size := uint64(len(data))
	for _, c := range []struct {
		off, n uint64
		exact  bool
	}{
		{4096, 4096, true}, {0, 1, true}, {65535, 2, true}, {100_000, 2 << 20, true}, {size - 10, 100, true},
		{0, size, true}, {0, size, false}, {1 << 20, 1 << 20, false}, {5, 70_000, false},
	} {
		req := &shoalpb.ReadChunkRequest{ChunkId: 9, Version: 1, Offset: c.off, Length: c.n, Exact: c.exact}
		got, err := rc.read(req)
		if err != nil {
			t.Fatalf("raw read %v: %v", req, err)
		}
		want, err := readChunkMessages(ctx, n.client, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("raw read %v: %d frames, ReadChunk sends %d messages", req, len(got), len(want))
		}
		for i := range got {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("raw read %v: frame %d differs from ReadChunk's message", req, i)
			}
		}
	}
	for _, off := range []uint64{size, size + 1} {
		got, err := rc.read(&shoalpb.ReadChunkRequest{ChunkId: 9, Version: 1, Offset: off, Length: 10})
		if err != nil || len(got) != 1 || len(got[0].Data) != 0 || len(got[0].Crcs) != 0 {
			t.Fatalf("raw read at %d, the end or past it: %v, %v; want one empty frame", off, got, err)
		}
	}
}

// readChunkMessages returns the messages ReadChunk streams for req.
func readChunkMessages(ctx context.Context, c shoalpb.ChunkServerClient, req *shoalpb.ReadChunkRequest) ([]*shoalpb.ReadChunkResponse, error) {
	st, err := c.ReadChunk(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*shoalpb.ReadChunkResponse
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
}

// A failed raw read is answered with the status ReadChunk ends with, and
// the connection serves the next read; a malformed request closes it.
func TestRawReadErrors(t *testing.T) {
	m := startManager(t)
	nodes := startNodes(t, m, 2)
	ctx := t.Context()
	data := storetest.Data(4, 3<<20)
	if _, err := writeChunk(ctx, nodes[0].client, header(4, 1, nodes[1]), patch{0, data}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, nodes[1], 4, 1, 2<<20+5)
	rc := dialRaw(t, nodes[1].addr)
	good := &shoalpb.ReadChunkRequest{ChunkId: 4, Version: 1, Offset: 0, Length: 1 << 20}
	for i, c := range []struct {
		req    *shoalpb.ReadChunkRequest
		code   codes.Code
		reason shoalpb.ErrorDetail_Reason
		frames int // good frames before the error
	}{
		{&shoalpb.ReadChunkRequest{ChunkId: 5, Version: 1, Length: 10}, codes.NotFound, 0, 0},
		{&shoalpb.ReadChunkRequest{ChunkId: 4, Version: 2, Length: 10}, codes.NotFound, 0, 0},
		{&shoalpb.ReadChunkRequest{ChunkId: 4, Version: 0, Length: 10}, codes.InvalidArgument, 0, 0},
		{&shoalpb.ReadChunkRequest{ChunkId: 4, Version: 1, Offset: 0, Length: 3 << 20}, codes.DataLoss, shoalpb.ErrorDetail_CORRUPT, 2},
		{&shoalpb.ReadChunkRequest{ChunkId: 4, Version: 1, Offset: 2<<20 + 1, Length: 1, Exact: true}, codes.DataLoss, shoalpb.ErrorDetail_CORRUPT, 0},
	} {
		frames, err := rc.read(c.req)
		wantCode(t, fmt.Sprintf("case %d", i), err, c.code, c.reason)
		if len(frames) != c.frames {
			t.Fatalf("case %d: %d frames before the error, want %d", i, len(frames), c.frames)
		}
		if got, err := rc.read(good); err != nil || len(got) != 1 || len(got[0].Data) != 1<<20 {
			t.Fatalf("case %d: the next read on the connection: %v", i, err)
		}
	}
	waitFor(t, "corrupt report", func() bool { return m.reported(nodes[1].srv.NodeID(), 4, 1, corrupt) })

	// A request with an unknown flag: the chunkserver hangs up.
	req := rawread.AppendRequest(nil, rawread.Request{ChunkID: 4, Version: 1, Length: 10})
	req[32] = 0x80
	if _, err := rc.c.Write(req); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after a malformed request: %v, want the connection closed", err)
	}
}

// Stopping a chunkserver cuts its raw connections, idle or not, and
// leaves no goroutine behind (TestMain checks).
func TestRawConnectionsEndAtStop(t *testing.T) {
	m := startManager(t)
	n := startNodes(t, m, 1)[0]
	rc := dialRaw(t, n.addr)
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("raw connection after stop: %v, want EOF", err)
	}
}

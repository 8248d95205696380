package rawread

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{ChunkID: 1, Version: 2, Offset: 3, Length: 4},
		{ChunkID: 1 << 62, Version: 7, Offset: 64 << 20, Length: 8 << 20, Exact: true},
	} {
		b := AppendRequest(nil, r)
		if len(b) != RequestSize {
			t.Fatalf("request of %d bytes, want %d", len(b), RequestSize)
		}
		got, err := ParseRequest(b)
		if err != nil || got != r {
			t.Fatalf("ParseRequest = %+v, %v; want %+v", got, err, r)
		}
	}
	b := AppendRequest(nil, Request{ChunkID: 1})
	b[32] = 2 // an unknown flag
	if _, err := ParseRequest(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown flag: err = %v, want ErrMalformed", err)
	}
	if _, err := ParseRequest(b[:RequestSize-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short request: err = %v, want ErrMalformed", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	m := &shoalpb.ReadChunkResponse{Offset: 70_000, Data: []byte("some bytes"), Crcs: []uint32{7, 8},
		HeadCrc: 9, TailCrc: 10, TailLength: 11}
	var wire bytes.Buffer
	wire.Write(AppendFrame(nil, m, false))
	wire.Write(m.Data)
	wire.Write(AppendFrame(nil, &shoalpb.ReadChunkResponse{}, true))
	st, _ := status.New(codes.DataLoss, "block 3 is corrupt").WithDetails(&shoalpb.ErrorDetail{Reason: shoalpb.ErrorDetail_CORRUPT})
	wire.Write(AppendError(nil, st.Err()))
	wire.Write(AppendError(nil, errors.New("not a status")))

	h, err := ReadHeader(&wire, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Code != codes.OK || h.Last() || h.Offset != 70_000 || h.DataLen != len(m.Data) || len(h.CRCs) != 2 ||
		h.CRCs[0] != 7 || h.CRCs[1] != 8 || h.HeadCRC != 9 || h.TailCRC != 10 || h.TailLength != 11 {
		t.Fatalf("header %+v does not match %+v", h, m)
	}
	data := make([]byte, h.DataLen)
	if _, err := io.ReadFull(&wire, data); err != nil || !bytes.Equal(data, m.Data) {
		t.Fatalf("data %q, %v", data, err)
	}
	if h, err = ReadHeader(&wire, nil); err != nil || !h.Last() || h.DataLen != 0 || len(h.CRCs) != 0 {
		t.Fatalf("empty last frame: %+v, %v", h, err)
	}

	h, err = ReadHeader(&wire, nil)
	if err != nil || h.Code != codes.DataLoss || !h.Last() {
		t.Fatalf("error frame: %+v, %v", h, err)
	}
	got := status.Convert(ReadError(&wire, h))
	if got.Code() != codes.DataLoss || got.Message() != "block 3 is corrupt" || len(got.Details()) != 1 ||
		got.Details()[0].(*shoalpb.ErrorDetail).GetReason() != shoalpb.ErrorDetail_CORRUPT {
		t.Fatalf("error = %v %q %v, want DataLoss with a CORRUPT detail", got.Code(), got.Message(), got.Details())
	}
	h, err = ReadHeader(&wire, nil)
	if err != nil || h.Code != codes.Unknown {
		t.Fatalf("plain error: %+v, %v; want Unknown", h, err)
	}
	if err := ReadError(&wire, h); status.Code(err) != codes.Unknown || status.Convert(err).Message() != "not a status" {
		t.Fatalf("plain error: %v", err)
	}
	if wire.Len() != 0 {
		t.Fatalf("%d bytes left over", wire.Len())
	}
}

func TestReadHeaderRejectsMalformed(t *testing.T) {
	good := AppendFrame(nil, &shoalpb.ReadChunkResponse{Data: make([]byte, 10), Crcs: []uint32{1}}, true)
	for name, mangle := range map[string]func(b []byte){
		"unknown flag":      func(b []byte) { b[4] = 2 },
		"data over 1 MiB":   func(b []byte) { b[18] = 0x20 }, // 2 MiB
		"too many crcs":     func(b []byte) { b[21] = 1 },    // 256
		"error with data":   func(b []byte) { b[0] = byte(codes.NotFound) },
		"message with data": func(b []byte) { b[40] = 1 },
		"huge offset":       func(b []byte) { b[15] = 0x80 },
	} {
		b := bytes.Clone(good)
		mangle(b)
		if _, err := ReadHeader(bytes.NewReader(append(b, make([]byte, 4096)...)), nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := ReadHeader(bytes.NewReader(good[:HeaderSize+2]), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut in its checksums: err = %v, want ErrUnexpectedEOF", err)
	}
}

// echo answers a raw connection's Magic, then echoes requests back.
func echo(conn net.Conn) {
	if _, err := io.WriteString(conn, Magic); err != nil {
		return
	}
	io.Copy(conn, conn)
}

// A Mux serves gRPC and raw connections on one listener, and Close cuts
// the raw ones and lets Wait return.
func TestMux(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := NewMux(lis, echo)
	gs := grpc.NewServer(transport.ServerOptions()...)
	shoalpb.RegisterChunkServerServer(gs, shoalpb.UnimplementedChunkServerServer{})
	served := make(chan error, 1)
	go func() { served <- gs.Serve(mux) }()
	defer func() {
		gs.Stop()
		<-served
		mux.Wait()
	}()

	cc, err := transport.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = shoalpb.NewChunkServerClient(cc).SyncChunks(ctx, &shoalpb.SyncChunksRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("gRPC through the mux: err = %v, want Unimplemented from the server", err)
	}

	raw, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	br := bufio.NewReader(raw)
	if err := Open(raw, br); err != nil {
		t.Fatalf("Open: %v", err)
	}
	req := AppendRequest(nil, Request{ChunkID: 5})
	if _, err := raw.Write(req); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(req))
	if _, err := io.ReadFull(br, back); err != nil || !bytes.Equal(back, req) {
		t.Fatalf("echo: %x, %v", back, err)
	}

	// A gRPC stop closes the mux, which cuts the raw connection.
	gs.Stop()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	served <- nil
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("raw connection after Stop: err = %v, want EOF", err)
	}
	if _, err := mux.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// Open on a server that speaks only gRPC fails with ErrUnsupported,
// promptly.
func TestOpenOnPlainGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(transport.ServerOptions()...)
	done := make(chan struct{})
	go func() { defer close(done); gs.Serve(lis) }()
	defer func() { gs.Stop(); <-done }()

	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if err := Open(conn, bufio.NewReader(conn)); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Open on a gRPC-only server: err = %v, want ErrUnsupported", err)
	}
}

// flakyListener fails its first Accept with a temporary error.
type flakyListener struct {
	net.Listener
	failed bool
}

type tempErr struct{}

func (tempErr) Error() string   { return "too many open files" }
func (tempErr) Temporary() bool { return true }
func (tempErr) Timeout() bool   { return false }

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

// A temporary Accept error (EMFILE) does not stop the Mux.
func TestMuxSurvivesTemporaryAcceptError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := NewMux(&flakyListener{Listener: lis}, echo)
	defer func() { mux.Close(); mux.Wait() }()
	raw, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	if err := Open(raw, bufio.NewReader(raw)); err != nil {
		t.Fatalf("Open after a temporary Accept error: %v", err)
	}
}

// A server that closes the connection without an answer (one that is
// stopping) is an error, not ErrUnsupported: the client tries the
// protocol again next time instead of giving it up for that server.
func TestOpenOnClosingServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := lis.Accept(); err == nil {
			c.Close()
		}
	}()
	defer func() { <-done }()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := Open(conn, bufio.NewReader(conn)); err == nil || errors.Is(err, ErrUnsupported) {
		t.Fatalf("Open on a server that hung up: err = %v, want an error other than ErrUnsupported", err)
	}
}

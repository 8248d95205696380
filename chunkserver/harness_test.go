package chunkserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/chunkserver/diskstore"
	"github.com/shoalfs/shoal/internal/rawread"
	"github.com/shoalfs/shoal/internal/testlog"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeManager is the manager at the process edge: it hands out node ids,
// records every Register and Heartbeat, and replies with the commands a
// test queues.
type fakeManager struct {
	shoalpb.UnimplementedManagerServer
	addr string
	gs   *grpc.Server

	mu         sync.Mutex // guards the fields below
	ids        int
	registers  []*shoalpb.RegisterRequest
	heartbeats []*shoalpb.HeartbeatRequest
	reregister map[string]bool                   // node id → answer its next heartbeat with reregister
	deletes    map[string][]*shoalpb.ChunkReport // node id → deletes for its next heartbeat
}

func startManager(t testing.TB) *fakeManager {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveManager(t, lis)
}

func serveManager(t testing.TB, lis net.Listener) *fakeManager {
	m := &fakeManager{
		addr:       lis.Addr().String(),
		gs:         grpc.NewServer(transport.ServerOptions()...),
		reregister: map[string]bool{},
		deletes:    map[string][]*shoalpb.ChunkReport{},
	}
	shoalpb.RegisterManagerServer(m.gs, m)
	done := make(chan struct{})
	go func() { defer close(done); m.gs.Serve(lis) }()
	t.Cleanup(func() { m.gs.Stop(); <-done })
	return m
}

func (m *fakeManager) Register(ctx context.Context, req *shoalpb.RegisterRequest) (*shoalpb.RegisterResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.registers = append(m.registers, req)
	id := req.NodeId
	if id == "" {
		m.ids++
		id = fmt.Sprintf("node-%d-%s", m.ids, req.Addr)
	}
	return &shoalpb.RegisterResponse{NodeId: id}, nil
}

func (m *fakeManager) Heartbeat(ctx context.Context, req *shoalpb.HeartbeatRequest) (*shoalpb.HeartbeatResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.heartbeats = append(m.heartbeats, req)
	if m.reregister[req.NodeId] {
		delete(m.reregister, req.NodeId)
		return &shoalpb.HeartbeatResponse{Reregister: true}, nil
	}
	d := m.deletes[req.NodeId]
	delete(m.deletes, req.NodeId)
	return &shoalpb.HeartbeatResponse{Delete: d}, nil
}

// registrations returns the Register calls from addr.
func (m *fakeManager) registrations(addr string) []*shoalpb.RegisterRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*shoalpb.RegisterRequest
	for _, r := range m.registers {
		if r.Addr == addr {
			out = append(out, r)
		}
	}
	return out
}

// heartbeatsFrom counts the heartbeats from node.
func (m *fakeManager) heartbeatsFrom(node string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, hb := range m.heartbeats {
		if hb.NodeId == node {
			n++
		}
	}
	return n
}

// reported says whether a heartbeat from node listed (id, version) in the
// list that pick selects.
func (m *fakeManager) reported(node string, id chunkserver.ChunkID, version uint64, pick func(*shoalpb.HeartbeatRequest) []*shoalpb.ChunkReport) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, hb := range m.heartbeats {
		if hb.NodeId != node {
			continue
		}
		for _, c := range pick(hb) {
			if c.ChunkId == uint64(id) && c.Version == version {
				return true
			}
		}
	}
	return false
}

func added(hb *shoalpb.HeartbeatRequest) []*shoalpb.ChunkReport   { return hb.Added }
func removed(hb *shoalpb.HeartbeatRequest) []*shoalpb.ChunkReport { return hb.Removed }
func corrupt(hb *shoalpb.HeartbeatRequest) []*shoalpb.ChunkReport { return hb.Corrupt }

// node is one chunkserver under test, serving on a 127.0.0.1 port.
type node struct {
	addr   string
	dir    string
	srv    *chunkserver.Server
	gs     *grpc.Server
	mux    *rawread.Mux // gRPC and raw reads on one port, as a chunkserver serves them
	client shoalpb.ChunkServerClient

	conn    *grpc.ClientConn
	cancel  context.CancelFunc
	served  chan struct{}
	ran     chan error
	stopped sync.Once
}

// startNode starts a chunkserver with a fresh data directory unless the
// options set one; opts adjust its config.
func startNode(t testing.TB, managerAddr string, opts ...func(*chunkserver.Config)) *node {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := chunkserver.DefaultConfig()
	cfg.Manager = managerAddr
	cfg.Advertise = lis.Addr().String()
	cfg.Dir = t.TempDir()
	cfg.Heartbeat = 20 * time.Millisecond
	cfg.ScrubInterval = 0
	cfg.Log = testlog.New(t).WithField("node", cfg.Advertise)
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := chunkserver.New(cfg)
	if err != nil {
		lis.Close()
		t.Fatal(err)
	}
	n := &node{addr: cfg.Advertise, dir: cfg.Dir, srv: srv, gs: grpc.NewServer(transport.ServerOptions()...),
		served: make(chan struct{}), ran: make(chan error, 1)}
	srv.RegisterService(n.gs)
	n.mux = rawread.NewMux(lis, srv.ServeRaw)
	go func() { defer close(n.served); n.gs.Serve(n.mux) }()
	var ctx context.Context
	ctx, n.cancel = context.WithCancel(context.Background())
	go func() { n.ran <- srv.Run(ctx) }()
	if n.conn, err = transport.Dial(n.addr); err != nil {
		t.Fatal(err)
	}
	n.client = shoalpb.NewChunkServerClient(n.conn)
	t.Cleanup(func() {
		if err := n.stop(); err != nil {
			t.Errorf("stop %s: %v", n.addr, err)
		}
	})
	return n
}

// stop ends Run, the gRPC server and the chunkserver, and waits for all.
func (n *node) stop() error {
	var err error
	n.stopped.Do(func() {
		n.cancel()
		n.gs.Stop()
		<-n.served
		n.mux.Wait()
		if rerr := <-n.ran; rerr != nil {
			err = fmt.Errorf("Run returned %w", rerr)
		}
		if cerr := n.srv.Close(); err == nil {
			err = cerr
		}
		n.conn.Close()
	})
	return err
}

// startNodes starts n chunkservers and waits until each has registered.
func startNodes(t testing.TB, m *fakeManager, count int, opts ...func(*chunkserver.Config)) []*node {
	t.Helper()
	var nodes []*node
	for i := 0; i < count; i++ {
		nodes = append(nodes, startNode(t, m.addr, opts...))
	}
	for _, n := range nodes {
		waitFor(t, "registration of "+n.addr, func() bool { return n.srv.NodeID() != "" })
	}
	return nodes
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

type patch struct {
	off  uint64
	data []byte
}

// writeChunk streams patches (each split into 1 MiB messages) to c.
func writeChunk(ctx context.Context, c shoalpb.ChunkServerClient, h *shoalpb.WriteChunkHeader, patches ...patch) (*shoalpb.WriteChunkResponse, error) {
	st, err := c.WriteChunk(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&shoalpb.WriteChunkRequest{Header: h}); err != nil {
		_, err = st.CloseAndRecv()
		return nil, err
	}
	for _, p := range patches {
		for i := 0; i < len(p.data); i += transport.MaxDataMessage {
			m := &shoalpb.WriteChunkRequest{Offset: p.off + uint64(i), Data: p.data[i:min(i+transport.MaxDataMessage, len(p.data))]}
			if err := st.Send(m); err != nil {
				_, err = st.CloseAndRecv()
				return nil, err
			}
		}
	}
	return st.CloseAndRecv()
}

func header(id chunkserver.ChunkID, version uint64, chain ...*node) *shoalpb.WriteChunkHeader {
	h := &shoalpb.WriteChunkHeader{ChunkId: uint64(id), Version: version}
	for _, n := range chain {
		h.Chain = append(h.Chain, n.addr)
	}
	return h
}

// readChunk reads [off, off+length) from c, checking that the messages are
// block-aligned, contiguous and match their checksums, and returns the
// data from the first (aligned) message offset on.
func readChunk(ctx context.Context, c shoalpb.ChunkServerClient, id chunkserver.ChunkID, version, off, length uint64) ([]byte, error) {
	st, err := c.ReadChunk(ctx, &shoalpb.ReadChunkRequest{ChunkId: uint64(id), Version: version, Offset: off, Length: length})
	if err != nil {
		return nil, err
	}
	var out []byte
	if length <= 256<<20 {
		out = make([]byte, 0, length+2*chunk.BlockSize) // no regrowth in benchmarks
	}
	next := off / chunk.BlockSize * chunk.BlockSize
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if m.Offset != next {
			return nil, fmt.Errorf("message at %d, want %d", m.Offset, next)
		}
		if len(m.Data) > transport.MaxDataMessage || len(m.Crcs) != chunk.Blocks(int64(len(m.Data))) {
			return nil, fmt.Errorf("message of %d bytes with %d checksums", len(m.Data), len(m.Crcs))
		}
		for i, want := range m.Crcs {
			b := m.Data[i*chunk.BlockSize : min((i+1)*chunk.BlockSize, len(m.Data))]
			if i < len(m.Crcs)-1 && len(b) != chunk.BlockSize {
				return nil, fmt.Errorf("short block in the middle of a message")
			}
			if got := chunk.Checksum(b); got != want {
				return nil, fmt.Errorf("block at %d: checksum %08x, sent %08x", m.Offset+uint64(i*chunk.BlockSize), got, want)
			}
		}
		out = append(out, m.Data...)
		next += uint64(len(m.Data))
	}
}

// wantCode checks that err is a status with code, and with the detail
// reason if reason is not UNSPECIFIED.
func wantCode(t testing.TB, what string, err error, code codes.Code, reason shoalpb.ErrorDetail_Reason) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("%s: %v, want code %v", what, err, code)
	}
	if reason == shoalpb.ErrorDetail_UNSPECIFIED {
		return
	}
	for _, d := range st.Details() {
		if ed, ok := d.(*shoalpb.ErrorDetail); ok && ed.Reason == reason {
			return
		}
	}
	t.Fatalf("%s: %v has no ErrorDetail %v", what, err, reason)
}

// flipByte damages data byte off of a replica on n's disk.
func flipByte(t testing.TB, n *node, id chunkserver.ChunkID, version uint64, off int64) {
	t.Helper()
	f, err := os.OpenFile(diskstore.ReplicaPath(n.dir, id, version), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, diskstore.DataOffset+off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, diskstore.DataOffset+off); err != nil {
		t.Fatal(err)
	}
}

// files lists the replica and temporary files under n's data directory.
func files(t testing.TB, n *node) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(n.dir, "chunks"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, filepath.Base(path))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func hasTemp(names []string) bool {
	return slices.ContainsFunc(names, func(s string) bool { return strings.HasPrefix(s, ".tmp-") })
}

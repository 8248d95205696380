package client

// In-memory fakes of the manager and chunkservers, served over real gRPC
// on 127.0.0.1, for testing the client at its process edge. They follow
// the proto's semantics closely enough for the client (chain forwarding,
// base versions, block CRCs, stale commits) and record what they saw.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/testlog"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func withReason(c codes.Code, r shoalpb.ErrorDetail_Reason, format string, args ...any) error {
	st, err := status.New(c, fmt.Sprintf(format, args...)).WithDetails(&shoalpb.ErrorDetail{Reason: r})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// serve runs a gRPC server on a fresh 127.0.0.1 port until the test ends.
func serve(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) (string, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(transport.ServerOptions(), opts...)...)
	register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String(), srv
}

// ---------------------------------------------------------------- manager

type fakeInode struct {
	attr     *shoalpb.Attr
	children map[string]uint64
	layout   map[uint64]*shoalpb.ChunkLayout
}

type fakeManager struct {
	shoalpb.UnimplementedManagerServer

	mu          sync.Mutex
	inodes      map[uint64]*fakeInode
	nextIno     uint64
	nextChunk   uint64
	nodes       []*shoalpb.Location
	replication int
	minReplicas int
	chunkSize   uint64
	bad         []*shoalpb.ReportBadReplicaRequest
	commits     []*shoalpb.CommitChunksRequest
	allocs      []*shoalpb.AllocateChunkRequest
	decommissed []string
	syncs       int // Sync calls
	setattrs    int // SetAttr calls
	// beforeCommit, if set, runs (without the lock) at the start of
	// every CommitChunks.
	beforeCommit func()
	// faults[method] > 0 makes the next calls of that method (the last
	// element of the gRPC method name) fail with Unavailable: before
	// running it, or with lostReply after running it.
	faults    map[string]int
	lostReply bool
}

// fault sets up n failures of method.
func (m *fakeManager) fault(method string, n int, lostReply bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.faults == nil {
		m.faults = map[string]int{}
	}
	m.faults[method] = n
	m.lostReply = lostReply
}

func (m *fakeManager) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	name := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	m.mu.Lock()
	fail := m.faults[name] > 0
	if fail {
		m.faults[name]--
	}
	lost := m.lostReply
	m.mu.Unlock()
	if !fail {
		return h(ctx, req)
	}
	if lost {
		_, _ = h(ctx, req)
	}
	return nil, status.Error(codes.Unavailable, "injected: manager unavailable")
}

func newFakeManager(replication, minReplicas int, chunkSize uint64) *fakeManager {
	m := &fakeManager{
		inodes:      make(map[uint64]*fakeInode),
		nextIno:     2,
		nextChunk:   100,
		replication: replication,
		minReplicas: minReplicas,
		chunkSize:   chunkSize,
	}
	m.inodes[1] = &fakeInode{attr: &shoalpb.Attr{Ino: 1, Mode: modeDir | 0o755, Nlink: 2}, children: map[string]uint64{}}
	return m
}

func (m *fakeManager) node(id string) *shoalpb.Location {
	for _, n := range m.nodes {
		if n.NodeId == id {
			return n
		}
	}
	return nil
}

func (m *fakeManager) get(ino uint64) (*fakeInode, error) {
	in := m.inodes[ino]
	if in == nil {
		return nil, status.Errorf(codes.NotFound, "ino %d", ino)
	}
	return in, nil
}

func (m *fakeManager) dir(ino uint64) (*fakeInode, error) {
	in, err := m.get(ino)
	if err != nil {
		return nil, err
	}
	if in.children == nil {
		return nil, withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR, "ino %d is not a directory", ino)
	}
	return in, nil
}

func (m *fakeManager) Lookup(_ context.Context, r *shoalpb.LookupRequest) (*shoalpb.LookupResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(r.Parent)
	if err != nil {
		return nil, err
	}
	ino, ok := d.children[r.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%q not found", r.Name)
	}
	return &shoalpb.LookupResponse{Attr: m.inodes[ino].attr}, nil
}

func (m *fakeManager) GetAttr(_ context.Context, r *shoalpb.GetAttrRequest) (*shoalpb.GetAttrResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.get(r.Ino)
	if err != nil {
		return nil, err
	}
	return &shoalpb.GetAttrResponse{Attr: in.attr}, nil
}

func (m *fakeManager) SetAttr(_ context.Context, r *shoalpb.SetAttrRequest) (*shoalpb.SetAttrResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.get(r.Ino)
	if err != nil {
		return nil, err
	}
	m.setattrs++
	m.setAttrLocked(in, r)
	if r.Mask&uint32(shoalpb.SetAttrMask_SETATTR_SIZE) != 0 {
		in.attr.Size = r.Size
		cs := in.attr.ChunkSize
		for idx, c := range in.layout {
			start := idx * cs
			switch {
			case start >= r.Size:
				delete(in.layout, idx)
			case start+c.Length > r.Size:
				c.Length = r.Size - start
			}
		}
	}
	return &shoalpb.SetAttrResponse{Attr: in.attr}, nil
}

// setAttrLocked applies r's mode, uid and mtime (not its size) to in.
func (m *fakeManager) setAttrLocked(in *fakeInode, r *shoalpb.SetAttrRequest) {
	if r.Mask&uint32(shoalpb.SetAttrMask_SETATTR_MODE) != 0 {
		in.attr.Mode = in.attr.Mode&modeType | r.Mode
	}
	if r.Mask&uint32(shoalpb.SetAttrMask_SETATTR_UID) != 0 {
		in.attr.Uid = r.Uid
	}
	if r.Mask&uint32(shoalpb.SetAttrMask_SETATTR_MTIME) != 0 {
		in.attr.MtimeNs = r.MtimeNs
	}
}

func (m *fakeManager) Create(_ context.Context, r *shoalpb.CreateRequest) (*shoalpb.CreateResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(r.Parent)
	if err != nil {
		return nil, err
	}
	if ino, ok := d.children[r.Name]; ok {
		ex := m.inodes[ino]
		if r.Exclusive || r.Mode&modeType != modeRegular || ex.attr.Mode&modeType != modeRegular {
			return nil, status.Errorf(codes.AlreadyExists, "%q exists", r.Name)
		}
		return &shoalpb.CreateResponse{Attr: ex.attr}, nil
	}
	ino := m.nextIno
	m.nextIno++
	cs := r.ChunkSize
	if cs == 0 {
		cs = m.chunkSize
	}
	in := &fakeInode{attr: &shoalpb.Attr{
		Ino: ino, Mode: r.Mode, Nlink: 1, Uid: r.Uid, Gid: r.Gid, SymlinkTarget: r.SymlinkTarget,
		ChunkSize: cs, MtimeNs: time.Now().UnixNano(),
	}}
	if r.Mode&modeType == modeDir {
		in.children = map[string]uint64{}
		in.attr.Nlink = 2
	} else {
		in.layout = map[uint64]*shoalpb.ChunkLayout{}
	}
	m.inodes[ino] = in
	d.children[r.Name] = ino
	return &shoalpb.CreateResponse{Attr: in.attr, Created: true, Parent: m.touch(d)}, nil
}

func (m *fakeManager) Unlink(_ context.Context, r *shoalpb.UnlinkRequest) (*shoalpb.UnlinkResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(r.Parent)
	if err != nil {
		return nil, err
	}
	ino, ok := d.children[r.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%q not found", r.Name)
	}
	in := m.inodes[ino]
	isDir := in.children != nil
	switch {
	case r.Dir && !isDir:
		return nil, withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR, "%q is not a directory", r.Name)
	case !r.Dir && isDir:
		return nil, withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_IS_DIR, "%q is a directory", r.Name)
	case isDir && len(in.children) > 0:
		return nil, withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_EMPTY, "%q is not empty", r.Name)
	}
	delete(d.children, r.Name)
	delete(m.inodes, ino)
	return &shoalpb.UnlinkResponse{Ino: ino, Removed: true, Parent: m.touch(d)}, nil
}

// touch stamps directory d's times as a change in it does, and returns
// a copy of its attributes for a reply.
func (m *fakeManager) touch(d *fakeInode) *shoalpb.Attr {
	now := time.Now().UnixNano()
	d.attr.MtimeNs, d.attr.CtimeNs = now, now
	return proto.Clone(d.attr).(*shoalpb.Attr)
}

func (m *fakeManager) Rename(_ context.Context, r *shoalpb.RenameRequest) (*shoalpb.RenameResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, err := m.dir(r.OldParent)
	if err != nil {
		return nil, err
	}
	nd, err := m.dir(r.NewParent)
	if err != nil {
		return nil, err
	}
	ino, ok := od.children[r.OldName]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%q not found", r.OldName)
	}
	resp := &shoalpb.RenameResponse{}
	if old, ok := nd.children[r.NewName]; ok {
		resp.ReplacedIno, resp.ReplacedRemoved = old, true
		delete(m.inodes, old)
	}
	delete(od.children, r.OldName)
	nd.children[r.NewName] = ino
	resp.OldParent, resp.NewParent = m.touch(od), m.touch(nd)
	return resp, nil
}

func (m *fakeManager) ReadDir(_ context.Context, r *shoalpb.ReadDirRequest) (*shoalpb.ReadDirResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.dir(r.Ino)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.children))
	for n := range d.children {
		if n > r.After {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	const page = 2 // small, to exercise paging
	resp := &shoalpb.ReadDirResponse{Eof: len(names) <= page}
	for _, n := range names[:min(page, len(names))] {
		a := m.inodes[d.children[n]].attr
		e := &shoalpb.DirEntry{Name: n, Ino: a.Ino, Mode: a.Mode}
		if r.Plus {
			e.Attr = a
		}
		resp.Entries = append(resp.Entries, e)
	}
	return resp, nil
}

func (m *fakeManager) StatFS(context.Context, *shoalpb.StatFSRequest) (*shoalpb.StatFSResponse, error) {
	return &shoalpb.StatFSResponse{CapacityBytes: 100, UsedBytes: 40, FreeBytes: 60, Files: 3, NameMax: 255}, nil
}

func (m *fakeManager) GetLayout(_ context.Context, r *shoalpb.GetLayoutRequest) (*shoalpb.GetLayoutResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.get(r.Ino)
	if err != nil {
		return nil, err
	}
	resp := &shoalpb.GetLayoutResponse{Attr: in.attr}
	for _, c := range in.layout {
		resp.Chunks = append(resp.Chunks, c)
	}
	sort.Slice(resp.Chunks, func(i, j int) bool { return resp.Chunks[i].Index < resp.Chunks[j].Index })
	return resp, nil
}

func (m *fakeManager) AllocateChunk(_ context.Context, r *shoalpb.AllocateChunkRequest) (*shoalpb.AllocateChunkResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.allocs = append(m.allocs, r)
	in, err := m.get(r.Ino)
	if err != nil {
		return nil, err
	}
	resp := &shoalpb.AllocateChunkResponse{MinReplicas: uint32(m.minReplicas)}
	if c := in.layout[r.Index]; c != nil {
		resp.ChunkId, resp.Version, resp.BaseVersion, resp.BaseLength = c.ChunkId, c.Version+1, c.Version, c.Length
		for _, l := range c.Replicas {
			if !slices.Contains(r.ExcludeNodes, l.NodeId) {
				resp.Targets = append(resp.Targets, l)
			}
		}
		return resp, nil
	}
	// Placement by chunk index, so tests know where chunk i goes.
	for i := 0; i < len(m.nodes) && len(resp.Targets) < m.replication; i++ {
		n := m.nodes[(int(r.Index)+i)%len(m.nodes)]
		if !slices.Contains(r.ExcludeNodes, n.NodeId) {
			resp.Targets = append(resp.Targets, n)
		}
	}
	if len(resp.Targets) < m.minReplicas {
		return nil, withReason(codes.ResourceExhausted, shoalpb.ErrorDetail_NO_SPACE, "%d nodes left, need %d", len(resp.Targets), m.minReplicas)
	}
	resp.ChunkId, resp.Version = m.nextChunk, 1
	m.nextChunk++
	return resp, nil
}

func (m *fakeManager) CommitChunks(_ context.Context, r *shoalpb.CommitChunksRequest) (*shoalpb.CommitChunksResponse, error) {
	if h := m.beforeCommit; h != nil {
		h()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.get(r.Ino)
	if err != nil {
		return nil, err
	}
	for _, c := range r.Chunks {
		if ex := in.layout[c.Index]; ex != nil && !(ex.ChunkId == c.ChunkId && c.Version == ex.Version+1) {
			return nil, withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_STALE_VERSION,
				"chunk %d: have %d v%d, commit of %d v%d", c.Index, ex.ChunkId, ex.Version, c.ChunkId, c.Version)
		}
	}
	for _, c := range r.Chunks {
		l := &shoalpb.ChunkLayout{Index: c.Index, ChunkId: c.ChunkId, Version: c.Version, Length: c.Length, Summary: c.Summary}
		for _, id := range c.NodeIds {
			if n := m.node(id); n != nil {
				l.Replicas = append(l.Replicas, n)
			}
		}
		in.layout[c.Index] = l
	}
	in.attr.Size = max(in.attr.Size, r.MinSize)
	in.attr.MtimeNs = r.MtimeNs
	if set := r.GetSet(); set != nil {
		m.setAttrLocked(in, set)
	}
	m.commits = append(m.commits, r)
	return &shoalpb.CommitChunksResponse{Attr: in.attr}, nil
}

func (m *fakeManager) Sync(context.Context, *shoalpb.SyncRequest) (*shoalpb.SyncResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncs++
	return &shoalpb.SyncResponse{}, nil
}

func (m *fakeManager) ReportBadReplica(_ context.Context, r *shoalpb.ReportBadReplicaRequest) (*shoalpb.ReportBadReplicaResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bad = append(m.bad, r)
	return &shoalpb.ReportBadReplicaResponse{}, nil
}

func (m *fakeManager) Status(context.Context, *shoalpb.StatusRequest) (*shoalpb.StatusResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	resp := &shoalpb.StatusResponse{Files: uint64(len(m.inodes)), Replication: uint32(m.replication), UnderReplicated: 1,
		Healer: &shoalpb.HealerStatus{Queued: 2, Deleted: 3, BytesPerSec: 1.5}}
	for _, n := range m.nodes {
		resp.Nodes = append(resp.Nodes, &shoalpb.NodeStatus{Id: n.NodeId, Addr: n.Addr, State: "live", LastHeartbeatNs: 1e9})
	}
	return resp, nil
}

func (m *fakeManager) Fsck(_ context.Context, r *shoalpb.FsckRequest) (*shoalpb.FsckResponse, error) {
	return &shoalpb.FsckResponse{Files: r.Ino, Chunks: 4, Healthy: 3, Missing: 1,
		Problems: []*shoalpb.FsckProblem{{Path: "/x", ChunkId: 7, Version: 2, State: "missing", Wanted: 3}}}, nil
}

func (m *fakeManager) Decommission(_ context.Context, r *shoalpb.DecommissionRequest) (*shoalpb.DecommissionResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node(r.Node) == nil {
		return nil, status.Errorf(codes.NotFound, "no node %q", r.Node)
	}
	m.decommissed = append(m.decommissed, r.Node)
	return &shoalpb.DecommissionResponse{}, nil
}

// ------------------------------------------------------------ chunkserver

type ckey struct{ id, version uint64 }

// writeRecord is one WriteChunk stream as a node saw it.
type writeRecord struct {
	hdr    *shoalpb.WriteChunkHeader
	ranges [][2]uint64 // offset, length
}

type fakeNode struct {
	shoalpb.UnimplementedChunkServerServer
	id, addr string
	gs       *grpc.Server

	mu     sync.Mutex
	chunks map[ckey][]byte
	writes []writeRecord
	reads  int // reads answered, by ReadChunk or on ReadChunks streams
	// smallReads counts the reads answered on ReadChunks streams, and
	// streams the streams; noSmall refuses them, as a chunkserver that
	// predates ReadChunks.
	smallReads, streams int
	noSmall             bool
	// stallReads holds reads on ReadChunks streams until the stream
	// ends; stalled counts the reads held.
	stallReads bool
	stalled    int
	// failAfter > 0 makes the next failWrites write streams fail after
	// that many data bytes, as a node dying mid-stream.
	failAfter  int64
	failWrites int
	corrupt    bool // serve reads with a flipped byte (CRCs of the good data)
	stall      bool // write streams hang until the client gives up
	failSync   bool // SyncChunks reports every replica as failed
	synced     map[ckey]int
	conns      map[string]*grpc.ClientConn // to peers; nil once the test ends
}

func (n *fakeNode) SyncChunks(_ context.Context, r *shoalpb.SyncChunksRequest) (*shoalpb.SyncChunksResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.synced == nil {
		n.synced = make(map[ckey]int)
	}
	resp := &shoalpb.SyncChunksResponse{Errors: make([]string, len(r.Chunks))}
	for i, c := range r.Chunks {
		k := ckey{c.ChunkId, c.Version}
		switch _, ok := n.chunks[k]; {
		case n.failSync:
			resp.Errors[i] = "injected fsync failure"
		case !ok:
			resp.Errors[i] = "not found"
		default:
			n.synced[k]++
		}
	}
	return resp, nil
}

// syncCount is how many times the node synced (id, version).
func (n *fakeNode) syncCount(id, version uint64) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.synced[ckey{id, version}]
}

func (n *fakeNode) peer(addr string) (shoalpb.ChunkServerClient, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		// The test is over; a handler still forwarding must not open a
		// connection nobody will close.
		return nil, status.Error(codes.Unavailable, "node stopped")
	}
	cc := n.conns[addr]
	if cc == nil {
		var err error
		if cc, err = transport.Dial(addr); err != nil {
			return nil, err
		}
		n.conns[addr] = cc
	}
	return shoalpb.NewChunkServerClient(cc), nil
}

func (n *fakeNode) WriteChunk(stream grpc.ClientStreamingServer[shoalpb.WriteChunkRequest, shoalpb.WriteChunkResponse]) error {
	n.mu.Lock()
	stall := n.stall
	n.mu.Unlock()
	if stall {
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return status.Error(codes.InvalidArgument, "no header")
	}
	var buf []byte
	if hdr.BaseVersion != 0 {
		n.mu.Lock()
		base, ok := n.chunks[ckey{hdr.ChunkId, hdr.BaseVersion}]
		n.mu.Unlock()
		if !ok {
			return status.Errorf(codes.NotFound, "no base %d v%d", hdr.ChunkId, hdr.BaseVersion)
		}
		buf = make([]byte, hdr.BaseLength)
		copy(buf, base)
	}
	var down grpc.ClientStreamingClient[shoalpb.WriteChunkRequest, shoalpb.WriteChunkResponse]
	var downErr error
	if len(hdr.Chain) > 0 {
		var cs shoalpb.ChunkServerClient
		if cs, downErr = n.peer(hdr.Chain[0]); downErr == nil {
			if down, downErr = cs.WriteChunk(stream.Context()); downErr == nil {
				h := &shoalpb.WriteChunkHeader{
					ChunkId: hdr.ChunkId, Version: hdr.Version, BaseVersion: hdr.BaseVersion,
					BaseLength: hdr.BaseLength, Chain: hdr.Chain[1:],
				}
				downErr = down.Send(&shoalpb.WriteChunkRequest{Header: h})
			}
		}
	}
	rec := writeRecord{hdr: hdr}
	var got int64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		got += int64(len(m.Data))
		n.mu.Lock()
		fail := n.failAfter > 0 && n.failWrites > 0 && got >= n.failAfter
		if fail {
			n.failWrites--
		}
		n.mu.Unlock()
		if fail {
			return status.Error(codes.Unavailable, "injected failure: node died")
		}
		end := int(m.Offset) + len(m.Data)
		if end > cap(buf) {
			nb := make([]byte, len(buf), max(2*cap(buf), end))
			copy(nb, buf)
			buf = nb
		}
		if end > len(buf) {
			buf = buf[:end]
		}
		copy(buf[m.Offset:], m.Data)
		rec.ranges = append(rec.ranges, [2]uint64{m.Offset, uint64(len(m.Data))})
		if down != nil && downErr == nil {
			downErr = down.Send(&shoalpb.WriteChunkRequest{Offset: m.Offset, Data: m.Data})
		}
	}
	resp := &shoalpb.WriteChunkResponse{
		Replicas: []*shoalpb.ReplicaResult{{Addr: n.addr, NodeId: n.id, Ok: true}},
		Length:   uint64(len(buf)),
		Summary:  crc32.Checksum(buf, castagnoli),
	}
	if len(hdr.Chain) > 0 {
		var r *shoalpb.WriteChunkResponse
		if down != nil {
			r, err = down.CloseAndRecv()
			if downErr == nil {
				downErr = err
			}
		}
		if downErr == nil {
			resp.Replicas = append(resp.Replicas, r.Replicas...)
		} else {
			for _, a := range hdr.Chain {
				resp.Replicas = append(resp.Replicas, &shoalpb.ReplicaResult{Addr: a, Error: downErr.Error()})
			}
		}
	}
	n.mu.Lock()
	n.chunks[ckey{hdr.ChunkId, hdr.Version}] = buf
	n.writes = append(n.writes, rec)
	n.mu.Unlock()
	return stream.SendAndClose(resp)
}

func (n *fakeNode) ReadChunk(r *shoalpb.ReadChunkRequest, stream grpc.ServerStreamingServer[shoalpb.ReadChunkResponse]) error {
	msgs, err := n.read(r, false)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func (n *fakeNode) ReadChunks(stream grpc.BidiStreamingServer[shoalpb.ReadChunkRequest, shoalpb.ReadChunkResponse]) error {
	n.mu.Lock()
	noSmall := n.noSmall
	if !noSmall {
		n.streams++
	}
	n.mu.Unlock()
	if noSmall {
		return status.Error(codes.Unimplemented, "unknown method ReadChunks")
	}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n.stallRead(stream.Context()) {
			return stream.Context().Err()
		}
		msgs, err := n.read(r, true)
		switch {
		case err != nil:
			return err
		case len(msgs) > 1:
			return status.Errorf(codes.InvalidArgument, "[%d, +%d) takes %d messages", r.Offset, r.Length, len(msgs))
		case len(msgs) == 0:
			msgs = append(msgs, &shoalpb.ReadChunkResponse{})
		}
		if err := stream.Send(msgs[0]); err != nil {
			return err
		}
	}
}

// stallRead, if reads stall, holds a read until its stream ends and
// reports true.
func (n *fakeNode) stallRead(ctx context.Context) bool {
	n.mu.Lock()
	stall := n.stallReads
	if stall {
		n.stalled++
	}
	n.mu.Unlock()
	if !stall {
		return false
	}
	<-ctx.Done()
	n.mu.Lock()
	n.stalled--
	n.mu.Unlock()
	return true
}

// read counts a read (small: on a ReadChunks stream) and returns the messages
// that answer it: whole blocks, with a byte flipped if the node serves
// corrupt data.
func (n *fakeNode) read(r *shoalpb.ReadChunkRequest, small bool) ([]*shoalpb.ReadChunkResponse, error) {
	n.mu.Lock()
	n.reads++
	if small {
		n.smallReads++
	}
	data, ok := n.chunks[ckey{r.ChunkId, r.Version}]
	corrupt := n.corrupt
	n.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no chunk %d v%d", r.ChunkId, r.Version)
	}
	var msgs []*shoalpb.ReadChunkResponse
	start := r.Offset - r.Offset%blockSize
	end := min(r.Offset+r.Length, uint64(len(data)))
	end = min((end+blockSize-1)/blockSize*blockSize, uint64(len(data)))
	for pos := start; pos < end; pos += transport.MaxDataMessage {
		e := min(pos+transport.MaxDataMessage, end)
		msg := &shoalpb.ReadChunkResponse{Offset: pos, Data: bytes.Clone(data[pos:e])}
		for b := pos; b < e; b += blockSize {
			msg.Crcs = append(msg.Crcs, crc32.Checksum(data[b:min(b+blockSize, e)], castagnoli))
		}
		if corrupt {
			msg.Data[len(msg.Data)/2] ^= 0xff
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

func (n *fakeNode) writeLog() []writeRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.writes)
}

// ---------------------------------------------------------------- cluster

type fakeCluster struct {
	mgr   *fakeManager
	addr  string
	nodes []*fakeNode
}

type fakeOptions struct {
	nodes, replication, minReplicas int
	chunkSize                       uint64
}

func newFakeCluster(t testing.TB, o fakeOptions) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{mgr: newFakeManager(o.replication, o.minReplicas, o.chunkSize)}
	for i := range o.nodes {
		n := &fakeNode{id: fmt.Sprintf("node%d", i), chunks: map[ckey][]byte{}, conns: map[string]*grpc.ClientConn{}}
		n.addr, n.gs = serve(t, func(s *grpc.Server) { shoalpb.RegisterChunkServerServer(s, n) })
		t.Cleanup(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, cc := range n.conns {
				cc.Close()
			}
			n.conns = nil
		})
		fc.nodes = append(fc.nodes, n)
		fc.mgr.nodes = append(fc.mgr.nodes, &shoalpb.Location{NodeId: n.id, Addr: n.addr})
	}
	fc.addr, _ = serve(t, func(s *grpc.Server) { shoalpb.RegisterManagerServer(s, fc.mgr) },
		grpc.UnaryInterceptor(fc.mgr.intercept))
	return fc
}

func (fc *fakeCluster) client(t testing.TB, edit func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Manager = fc.addr
	cfg.RPCTimeout = 5 * time.Second
	cfg.OpTimeout = 10 * time.Second
	cfg.Log = testlog.New(t)
	cfg.InlineMax = 0 // these tests are about chunks; inline_test.go about the rest
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (fc *fakeCluster) nodeByID(id string) *fakeNode {
	for _, n := range fc.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// layout returns the manager's layout of ino.
func (fc *fakeCluster) layout(ino Ino) map[uint64]*shoalpb.ChunkLayout {
	fc.mgr.mu.Lock()
	defer fc.mgr.mu.Unlock()
	out := map[uint64]*shoalpb.ChunkLayout{}
	for k, v := range fc.mgr.inodes[uint64(ino)].layout {
		out[k] = v
	}
	return out
}

// wantNoBadReports fails the test if any replica was reported bad,
// after reads of what.
func (fc *fakeCluster) wantNoBadReports(t testing.TB, what string) {
	t.Helper()
	fc.mgr.mu.Lock()
	defer fc.mgr.mu.Unlock()
	if len(fc.mgr.bad) != 0 {
		t.Errorf("%s reported bad: %v", what, fc.mgr.bad)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

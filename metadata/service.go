package metadata

import (
	"context"
	"errors"
	"fmt"

	shoalpb "github.com/shoalfs/shoal/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// service is the Manager's gRPC face: it validates requests, converts
// between protobuf and domain types (pb types stop here), and maps errors
// in toStatus. It embeds UnimplementedManagerServer so that an RPC added to
// the proto compiles before it is implemented (and answers Unimplemented).
type service struct {
	shoalpb.UnimplementedManagerServer
	m *Manager
}

// RegisterService registers the Manager's gRPC service on g.
func (m *Manager) RegisterService(g *grpc.Server) {
	shoalpb.RegisterManagerServer(g, &service{m: m})
}

// toStatus is the one place a domain error becomes a gRPC status. Errors
// a filesystem must tell apart carry a shoalpb.ErrorDetail reason.
func (s *service) toStatus(err error) error {
	if err == nil {
		return nil
	}
	type mapping struct {
		target error
		code   codes.Code
		reason shoalpb.ErrorDetail_Reason
	}
	table := []mapping{
		{ErrNotFound, codes.NotFound, shoalpb.ErrorDetail_UNSPECIFIED},
		{ErrExists, codes.AlreadyExists, shoalpb.ErrorDetail_UNSPECIFIED},
		{ErrNotEmpty, codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_EMPTY},
		{ErrNotDir, codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR},
		{ErrIsDir, codes.FailedPrecondition, shoalpb.ErrorDetail_IS_DIR},
		{ErrLoop, codes.FailedPrecondition, shoalpb.ErrorDetail_LOOP},
		{ErrStaleVersion, codes.Aborted, shoalpb.ErrorDetail_STALE_VERSION},
		{ErrNoChunkServers, codes.ResourceExhausted, shoalpb.ErrorDetail_NO_SPACE},
		{ErrNameTooLong, codes.InvalidArgument, shoalpb.ErrorDetail_NAME_TOO_LONG},
		{errBadName, codes.InvalidArgument, shoalpb.ErrorDetail_INVALID_NAME}, // before ErrInvalid, which it wraps
		{ErrInvalid, codes.InvalidArgument, shoalpb.ErrorDetail_UNSPECIFIED},
		{ErrClosed, codes.Unavailable, shoalpb.ErrorDetail_UNSPECIFIED},
		{ErrSafeMode, codes.Unavailable, shoalpb.ErrorDetail_UNSPECIFIED},
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	for _, e := range table {
		if !errors.Is(err, e.target) {
			continue
		}
		st := status.New(e.code, err.Error())
		if e.reason == shoalpb.ErrorDetail_UNSPECIFIED {
			return st.Err()
		}
		if withDetail, derr := st.WithDetails(&shoalpb.ErrorDetail{Reason: e.reason}); derr == nil {
			st = withDetail
		}
		return st.Err()
	}
	s.m.log.WithError(err).Error("metadata: internal error")
	return status.Error(codes.Internal, err.Error())
}

// invalid makes a request validation error.
func invalid(format string, args ...any) error {
	return fmt.Errorf("metadata: %s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

func checkIno(what string, ino uint64) error {
	if ino == 0 {
		return invalid("%s: inode 0", what)
	}
	return nil
}

func attrToPB(a Attr) *shoalpb.Attr {
	return &shoalpb.Attr{
		Ino: uint64(a.Ino), Mode: a.Mode, Nlink: a.Nlink, Uid: a.UID, Gid: a.GID, Size: a.Size,
		AtimeNs: a.Atime, MtimeNs: a.Mtime, CtimeNs: a.Ctime, SymlinkTarget: a.Target,
		ChunkSize: a.ChunkSize, Rdev: a.Rdev,
	}
}

func reportsFromPB(in []*shoalpb.ChunkReport) []ReplicaReport {
	out := make([]ReplicaReport, 0, len(in))
	for _, r := range in {
		out = append(out, ReplicaReport{Chunk: ChunkID(r.GetChunkId()), Version: r.GetVersion(), Length: r.GetLength(), Summary: r.GetSummary()})
	}
	return out
}

func locationsToPB(in []Location) []*shoalpb.Location {
	out := make([]*shoalpb.Location, 0, len(in))
	for _, l := range in {
		out = append(out, &shoalpb.Location{NodeId: l.NodeID, Addr: l.Addr})
	}
	return out
}

func (s *service) Lookup(ctx context.Context, req *shoalpb.LookupRequest) (*shoalpb.LookupResponse, error) {
	if err := checkIno("lookup", req.GetParent()); err != nil {
		return nil, s.toStatus(err)
	}
	a, err := s.m.Lookup(ctx, Ino(req.GetParent()), req.GetName())
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.LookupResponse{Attr: attrToPB(a)}, nil
}

func (s *service) GetAttr(ctx context.Context, req *shoalpb.GetAttrRequest) (*shoalpb.GetAttrResponse, error) {
	if err := checkIno("getattr", req.GetIno()); err != nil {
		return nil, s.toStatus(err)
	}
	a, err := s.m.GetAttr(ctx, Ino(req.GetIno()))
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.GetAttrResponse{Attr: attrToPB(a)}, nil
}

func (s *service) SetAttr(ctx context.Context, req *shoalpb.SetAttrRequest) (*shoalpb.SetAttrResponse, error) {
	if req.GetIno() == 0 {
		return nil, s.toStatus(invalid("setattr: inode 0"))
	}
	args, err := setAttrArgs(req)
	if err != nil {
		return nil, s.toStatus(err)
	}
	a, err := s.m.SetAttr(ctx, Ino(req.GetIno()), args)
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.SetAttrResponse{Attr: attrToPB(a)}, nil
}

// setAttrArgs checks and converts a SetAttrRequest (its ino aside).
func setAttrArgs(req *shoalpb.SetAttrRequest) (SetAttrArgs, error) {
	const known = SetMode | SetUID | SetGID | SetSize | SetAtime | SetMtime
	if req.GetMask()&^known != 0 {
		return SetAttrArgs{}, invalid("setattr: unknown mask bits %#x", req.GetMask()&^known)
	}
	return SetAttrArgs{
		Mask: req.GetMask(), Mode: req.GetMode(), UID: req.GetUid(), GID: req.GetGid(),
		Size: req.GetSize(), Atime: req.GetAtimeNs(), Mtime: req.GetMtimeNs(),
	}, nil
}

func (s *service) Create(ctx context.Context, req *shoalpb.CreateRequest) (*shoalpb.CreateResponse, error) {
	if err := checkIno("create", req.GetParent()); err != nil {
		return nil, s.toStatus(err)
	}
	r, err := s.m.Create(ctx, Ino(req.GetParent()), req.GetName(), CreateArgs{
		Mode: req.GetMode(), UID: req.GetUid(), GID: req.GetGid(), Target: req.GetSymlinkTarget(),
		Rdev: req.GetRdev(), ChunkSize: req.GetChunkSize(), Exclusive: req.GetExclusive(), Allocate: req.GetAllocate(),
	})
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &shoalpb.CreateResponse{Attr: attrToPB(r.Attr), Created: r.Created, Parent: attrToPB(r.Parent)}
	if r.First != nil {
		resp.FirstChunk = allocationToPB(*r.First)
	}
	return resp, nil
}

func (s *service) Link(ctx context.Context, req *shoalpb.LinkRequest) (*shoalpb.LinkResponse, error) {
	if req.GetIno() == 0 || req.GetNewParent() == 0 {
		return nil, s.toStatus(invalid("link: inode 0"))
	}
	a, parent, err := s.m.Link(ctx, Ino(req.GetIno()), Ino(req.GetNewParent()), req.GetNewName())
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.LinkResponse{Attr: attrToPB(a), Parent: attrToPB(parent)}, nil
}

func (s *service) Unlink(ctx context.Context, req *shoalpb.UnlinkRequest) (*shoalpb.UnlinkResponse, error) {
	if err := checkIno("unlink", req.GetParent()); err != nil {
		return nil, s.toStatus(err)
	}
	r, err := s.m.Unlink(ctx, Ino(req.GetParent()), req.GetName(), req.GetDir(), req.GetKeepOpen())
	if err != nil {
		return nil, s.toStatus(err)
	}
	return unlinkToPB(r), nil
}

func unlinkToPB(r UnlinkResult) *shoalpb.UnlinkResponse {
	return &shoalpb.UnlinkResponse{Ino: uint64(r.Ino), Removed: r.Removed, Parent: attrToPB(r.Parent)}
}

func (s *service) UnlinkBatch(ctx context.Context, req *shoalpb.UnlinkBatchRequest) (*shoalpb.UnlinkBatchResponse, error) {
	ops := make([]UnlinkOp, len(req.GetUnlinks()))
	for i, u := range req.GetUnlinks() {
		if err := checkIno("unlink", u.GetParent()); err != nil {
			return nil, s.toStatus(err)
		}
		if u.GetDir() {
			return nil, s.toStatus(invalid("unlink batch: entry %d is an rmdir", i))
		}
		ops[i] = UnlinkOp{Parent: Ino(u.GetParent()), Name: u.GetName(), KeepOpen: u.GetKeepOpen()}
	}
	rs, errs, err := s.m.UnlinkFiles(ctx, ops)
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &shoalpb.UnlinkBatchResponse{Outcomes: make([]*shoalpb.UnlinkOutcome, len(ops))}
	for i, r := range rs {
		if errs[i] == nil {
			resp.Outcomes[i] = &shoalpb.UnlinkOutcome{Ok: unlinkToPB(r)}
			continue
		}
		st := status.Convert(s.toStatus(errs[i]))
		o := &shoalpb.UnlinkOutcome{Code: uint32(st.Code()), Message: st.Message()}
		for _, d := range st.Details() {
			if ed, ok := d.(*shoalpb.ErrorDetail); ok {
				o.Reason = ed.GetReason()
			}
		}
		resp.Outcomes[i] = o
	}
	return resp, nil
}

func (s *service) Rename(ctx context.Context, req *shoalpb.RenameRequest) (*shoalpb.RenameResponse, error) {
	if req.GetOldParent() == 0 || req.GetNewParent() == 0 {
		return nil, s.toStatus(invalid("rename: inode 0"))
	}
	r, err := s.m.Rename(ctx, RenameArgs{
		OldParent: Ino(req.GetOldParent()), OldName: req.GetOldName(),
		NewParent: Ino(req.GetNewParent()), NewName: req.GetNewName(),
		Flags: req.GetFlags(), KeepOpen: req.GetKeepOpen(),
	})
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.RenameResponse{
		ReplacedIno: uint64(r.Replaced), ReplacedRemoved: r.ReplacedRemoved,
		OldParent: attrToPB(r.OldParent), NewParent: attrToPB(r.NewParent),
	}, nil
}

func (s *service) ReleaseInode(ctx context.Context, req *shoalpb.ReleaseInodeRequest) (*shoalpb.ReleaseInodeResponse, error) {
	if err := checkIno("release", req.GetIno()); err != nil {
		return nil, s.toStatus(err)
	}
	if err := s.m.ReleaseInode(ctx, Ino(req.GetIno())); err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.ReleaseInodeResponse{}, nil
}

func (s *service) ReadDir(ctx context.Context, req *shoalpb.ReadDirRequest) (*shoalpb.ReadDirResponse, error) {
	if err := checkIno("readdir", req.GetIno()); err != nil {
		return nil, s.toStatus(err)
	}
	if len(req.GetAfter()) > NameMax {
		return nil, s.toStatus(invalid("readdir: resume name of %d bytes", len(req.GetAfter())))
	}
	entries, eof, err := s.m.ReadDir(ctx, Ino(req.GetIno()), req.GetAfter(), int(min(req.GetLimit(), maxReadDirLimit)), req.GetPlus())
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &shoalpb.ReadDirResponse{Eof: eof, Entries: make([]*shoalpb.DirEntry, 0, len(entries))}
	for _, e := range entries {
		de := &shoalpb.DirEntry{Name: e.Name, Ino: uint64(e.Ino), Mode: e.Mode}
		if e.Attr != nil {
			de.Attr = attrToPB(*e.Attr)
		}
		resp.Entries = append(resp.Entries, de)
	}
	return resp, nil
}

func (s *service) Sync(ctx context.Context, req *shoalpb.SyncRequest) (*shoalpb.SyncResponse, error) {
	if err := s.m.Sync(ctx); err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.SyncResponse{}, nil
}

func (s *service) StatFS(ctx context.Context, req *shoalpb.StatFSRequest) (*shoalpb.StatFSResponse, error) {
	st, err := s.m.StatFS(ctx)
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.StatFSResponse{
		CapacityBytes: st.Capacity, UsedBytes: st.Used, FreeBytes: st.Free,
		Files: st.Inodes, NameMax: st.NameMax, Replication: st.Replication,
	}, nil
}

func (s *service) GetLayout(ctx context.Context, req *shoalpb.GetLayoutRequest) (*shoalpb.GetLayoutResponse, error) {
	if err := checkIno("layout", req.GetIno()); err != nil {
		return nil, s.toStatus(err)
	}
	a, chunks, err := s.m.GetLayout(ctx, Ino(req.GetIno()), req.GetFirst(), req.GetCount())
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &shoalpb.GetLayoutResponse{Attr: attrToPB(a), Chunks: make([]*shoalpb.ChunkLayout, 0, len(chunks))}
	for _, c := range chunks {
		resp.Chunks = append(resp.Chunks, &shoalpb.ChunkLayout{
			Index: c.Index, ChunkId: uint64(c.Chunk), Version: c.Version, Length: c.Length,
			Summary: c.Summary, Replicas: locationsToPB(c.Replicas), Inline: c.Inline,
		})
	}
	return resp, nil
}

func (s *service) AllocateChunk(ctx context.Context, req *shoalpb.AllocateChunkRequest) (*shoalpb.AllocateChunkResponse, error) {
	if err := checkIno("allocate", req.GetIno()); err != nil {
		return nil, s.toStatus(err)
	}
	al, err := s.m.AllocateChunk(ctx, Ino(req.GetIno()), req.GetIndex(), req.GetExcludeNodes())
	if err != nil {
		return nil, s.toStatus(err)
	}
	return allocationToPB(al), nil
}

func allocationToPB(al Allocation) *shoalpb.AllocateChunkResponse {
	return &shoalpb.AllocateChunkResponse{
		ChunkId: uint64(al.Chunk), Version: al.Version, BaseVersion: al.BaseVersion, BaseLength: al.BaseLength,
		Targets: locationsToPB(al.Targets), MinReplicas: uint32(al.MinReplicas),
	}
}

func (s *service) CommitChunks(ctx context.Context, req *shoalpb.CommitChunksRequest) (*shoalpb.CommitChunksResponse, error) {
	if err := checkIno("commit", req.GetIno()); err != nil {
		return nil, s.toStatus(err)
	}
	commits := make([]ChunkCommit, 0, len(req.GetChunks()))
	for _, c := range req.GetChunks() {
		commits = append(commits, ChunkCommit{
			Index: c.GetIndex(), Chunk: ChunkID(c.GetChunkId()), Version: c.GetVersion(),
			Length: c.GetLength(), Summary: c.GetSummary(), Nodes: c.GetNodeIds(),
			Inline: c.GetInline(), InlineBase: c.GetInlineBase(),
		})
	}
	var set SetAttrArgs
	if req.GetSet() != nil {
		var err error
		if set, err = setAttrArgs(req.GetSet()); err != nil {
			return nil, s.toStatus(err)
		}
	}
	a, err := s.m.CommitChunksAndSetAttr(ctx, Ino(req.GetIno()), commits, req.GetMinSize(), req.GetMtimeNs(), set)
	if err != nil {
		return nil, s.toStatus(err)
	}
	for _, r := range req.GetRelease() {
		s.m.ReleaseAllocation(ChunkID(r.GetChunkId()), r.GetVersion())
	}
	return &shoalpb.CommitChunksResponse{Attr: attrToPB(a)}, nil
}

func (s *service) ReportBadReplica(ctx context.Context, req *shoalpb.ReportBadReplicaRequest) (*shoalpb.ReportBadReplicaResponse, error) {
	if req.GetChunkId() == 0 || req.GetNodeId() == "" {
		return nil, s.toStatus(invalid("report bad replica: chunk id and node id are required"))
	}
	err := s.m.ReportBadReplica(ctx, ChunkID(req.GetChunkId()), req.GetVersion(), req.GetNodeId(), req.GetReason())
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.ReportBadReplicaResponse{}, nil
}

func (s *service) Register(ctx context.Context, req *shoalpb.RegisterRequest) (*shoalpb.RegisterResponse, error) {
	id, err := s.m.Register(ctx, RegisterArgs{
		NodeID: req.GetNodeId(), Addr: req.GetAddr(), Rack: req.GetRack(),
		Capacity: req.GetCapacityBytes(), Used: req.GetUsedBytes(), Chunks: reportsFromPB(req.GetChunks()),
	})
	if err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.RegisterResponse{NodeId: id, HeartbeatIntervalNs: int64(s.m.heartbeatInterval())}, nil
}

func (s *service) Heartbeat(ctx context.Context, req *shoalpb.HeartbeatRequest) (*shoalpb.HeartbeatResponse, error) {
	reply, err := s.m.Heartbeat(ctx, HeartbeatArgs{
		NodeID: req.GetNodeId(), Capacity: req.GetCapacityBytes(), Used: req.GetUsedBytes(),
		Added: reportsFromPB(req.GetAdded()), Removed: reportsFromPB(req.GetRemoved()), Corrupt: reportsFromPB(req.GetCorrupt()),
	})
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &shoalpb.HeartbeatResponse{Reregister: reply.Reregister, Delete: make([]*shoalpb.ChunkReport, 0, len(reply.Delete))}
	for _, d := range reply.Delete {
		resp.Delete = append(resp.Delete, &shoalpb.ChunkReport{ChunkId: uint64(d.Chunk), Version: d.Version})
	}
	return resp, nil
}

func (s *service) Status(ctx context.Context, req *shoalpb.StatusRequest) (*shoalpb.StatusResponse, error) {
	st, err := s.m.Status(ctx)
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &shoalpb.StatusResponse{
		Files: st.Files, Chunks: st.Chunks, UnderReplicated: st.UnderReplicated, Missing: st.Missing,
		OverReplicated: st.OverReplicated, SafeMode: st.SafeMode, Replication: uint32(st.Replication),
	}
	for _, n := range st.Nodes {
		ns := &shoalpb.NodeStatus{
			Id: n.ID, Addr: n.Addr, Rack: n.Rack, State: string(n.State), Chunks: uint64(n.Chunks),
			UsedBytes: n.Used, CapacityBytes: n.Capacity,
		}
		if !n.LastHeartbeat.IsZero() {
			ns.LastHeartbeatNs = n.LastHeartbeat.UnixNano()
		}
		resp.Nodes = append(resp.Nodes, ns)
	}
	if h := st.Healer; h != nil {
		resp.Healer = &shoalpb.HealerStatus{
			Queued: h.Queued, Copying: h.Copying, Done: h.Done, Failed: h.Failed,
			BytesPerSec: h.BytesPerSec, Deleted: h.Deleted,
		}
	}
	return resp, nil
}

func (s *service) Fsck(ctx context.Context, req *shoalpb.FsckRequest) (*shoalpb.FsckResponse, error) {
	r, err := s.m.Fsck(ctx, Ino(req.GetIno()), int(min(req.GetLimit(), 1<<20)))
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &shoalpb.FsckResponse{
		Files: r.Files, Chunks: r.Chunks, Healthy: r.Healthy, UnderReplicated: r.UnderReplicated,
		OverReplicated: r.OverReplicated, Missing: r.Missing, Corrupt: r.Corrupt,
	}
	for _, p := range r.Problems {
		resp.Problems = append(resp.Problems, &shoalpb.FsckProblem{
			Path: p.Path, ChunkId: uint64(p.Chunk), Version: p.Version, State: p.State,
			LiveReplicas: uint32(p.Live), Wanted: uint32(p.Wanted),
		})
	}
	return resp, nil
}

func (s *service) Decommission(ctx context.Context, req *shoalpb.DecommissionRequest) (*shoalpb.DecommissionResponse, error) {
	if req.GetNode() == "" {
		return nil, s.toStatus(invalid("decommission: empty node"))
	}
	if err := s.m.Decommission(ctx, req.GetNode()); err != nil {
		return nil, s.toStatus(err)
	}
	return &shoalpb.DecommissionResponse{}, nil
}

package client

import (
	"time"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// This file converts between shoalpb messages and the client's types.

func timeFromNs(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func attrFromPB(a *shoalpb.Attr) Attr {
	if a == nil {
		return Attr{}
	}
	return Attr{
		Ino:       Ino(a.GetIno()),
		Mode:      a.GetMode(),
		Nlink:     a.GetNlink(),
		UID:       a.GetUid(),
		GID:       a.GetGid(),
		Size:      a.GetSize(),
		Atime:     timeFromNs(a.GetAtimeNs()),
		Mtime:     timeFromNs(a.GetMtimeNs()),
		Ctime:     timeFromNs(a.GetCtimeNs()),
		Target:    a.GetSymlinkTarget(),
		ChunkSize: a.GetChunkSize(),
		Rdev:      a.GetRdev(),
	}
}

// optAttrFromPB is attrFromPB for an optional field: nil when a is (a
// manager that does not send it).
func optAttrFromPB(a *shoalpb.Attr) *Attr {
	if a == nil {
		return nil
	}
	out := attrFromPB(a)
	return &out
}

func setAttrToPB(ino Ino, s SetAttr) *shoalpb.SetAttrRequest {
	req := &shoalpb.SetAttrRequest{Ino: uint64(ino)}
	if s.Mode != nil {
		req.Mask |= uint32(shoalpb.SetAttrMask_SETATTR_MODE)
		req.Mode = *s.Mode & 0o7777
	}
	if s.UID != nil {
		req.Mask |= uint32(shoalpb.SetAttrMask_SETATTR_UID)
		req.Uid = *s.UID
	}
	if s.GID != nil {
		req.Mask |= uint32(shoalpb.SetAttrMask_SETATTR_GID)
		req.Gid = *s.GID
	}
	if s.Size != nil {
		req.Mask |= uint32(shoalpb.SetAttrMask_SETATTR_SIZE)
		req.Size = *s.Size
	}
	if s.Atime != nil {
		req.Mask |= uint32(shoalpb.SetAttrMask_SETATTR_ATIME)
		req.AtimeNs = s.Atime.UnixNano()
	}
	if s.Mtime != nil {
		req.Mask |= uint32(shoalpb.SetAttrMask_SETATTR_MTIME)
		req.MtimeNs = s.Mtime.UnixNano()
	}
	return req
}

func dirEntryFromPB(e *shoalpb.DirEntry) DirEntry {
	d := DirEntry{Name: e.GetName(), Ino: Ino(e.GetIno()), Mode: e.GetMode()}
	if e.GetAttr() != nil {
		a := attrFromPB(e.GetAttr())
		d.Attr = &a
	}
	return d
}

// location is one replica of a chunk.
type location struct {
	nodeID string
	addr   string
}

// chunkLoc is one entry of a file's layout.
type chunkLoc struct {
	index    uint64
	chunkID  uint64
	version  uint64
	length   int64
	replicas []location // best first
	// inline holds chunk 0's bytes when the manager keeps them (a small
	// file): then chunkID and version are 0, there are no replicas, and
	// length is len(inline).
	inline []byte
}

func chunkLocFromPB(c *shoalpb.ChunkLayout) *chunkLoc {
	l := &chunkLoc{
		index:   c.GetIndex(),
		chunkID: c.GetChunkId(),
		version: c.GetVersion(),
		length:  int64(c.GetLength()),
		inline:  c.GetInline(),
	}
	for _, r := range c.GetReplicas() {
		l.replicas = append(l.replicas, location{nodeID: r.GetNodeId(), addr: r.GetAddr()})
	}
	return l
}

func statusFromPB(r *shoalpb.StatusResponse) StatusReport {
	s := StatusReport{
		Nodes:           []NodeStatus{},
		Files:           r.GetFiles(),
		Chunks:          r.GetChunks(),
		UnderReplicated: r.GetUnderReplicated(),
		OverReplicated:  r.GetOverReplicated(),
		Missing:         r.GetMissing(),
		Replication:     r.GetReplication(),
		SafeMode:        r.GetSafeMode(),
	}
	for _, n := range r.GetNodes() {
		s.Nodes = append(s.Nodes, NodeStatus{
			ID:            n.GetId(),
			Addr:          n.GetAddr(),
			Rack:          n.GetRack(),
			State:         n.GetState(),
			Chunks:        n.GetChunks(),
			UsedBytes:     n.GetUsedBytes(),
			CapacityBytes: n.GetCapacityBytes(),
			LastHeartbeat: timeFromNs(n.GetLastHeartbeatNs()),
		})
	}
	if h := r.GetHealer(); h != nil {
		s.Healer = HealerStatus{
			Queued:      h.GetQueued(),
			Copying:     h.GetCopying(),
			Done:        h.GetDone(),
			Failed:      h.GetFailed(),
			Deleted:     h.GetDeleted(),
			BytesPerSec: h.GetBytesPerSec(),
		}
	}
	return s
}

func fsckFromPB(r *shoalpb.FsckResponse) FsckReport {
	f := FsckReport{
		Files:           r.GetFiles(),
		Chunks:          r.GetChunks(),
		Healthy:         r.GetHealthy(),
		UnderReplicated: r.GetUnderReplicated(),
		OverReplicated:  r.GetOverReplicated(),
		Missing:         r.GetMissing(),
		Corrupt:         r.GetCorrupt(),
		Problems:        []FsckProblem{},
	}
	for _, p := range r.GetProblems() {
		f.Problems = append(f.Problems, FsckProblem{
			Path:         p.GetPath(),
			ChunkID:      p.GetChunkId(),
			Version:      p.GetVersion(),
			State:        p.GetState(),
			LiveReplicas: p.GetLiveReplicas(),
			Wanted:       p.GetWanted(),
		})
	}
	return f
}

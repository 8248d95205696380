package metadata

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// FuzzServiceRequests feeds arbitrary bytes, decoded as each kind of
// manager request, to the real service over real (in-memory) Badger. A
// malformed request must be refused with a client error, never Internal
// and never a panic, and must leave the namespace usable.
func FuzzServiceRequests(f *testing.F) {
	seed := func(op uint8, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(op, b)
	}
	seed(0, &shoalpb.CreateRequest{Parent: 1, Name: "f", Mode: 0o100644})
	seed(0, &shoalpb.CreateRequest{Parent: 1, Name: "d", Mode: 0o040755})
	seed(0, &shoalpb.CreateRequest{Parent: 1, Name: "a/b", Mode: 0o100644})
	seed(1, &shoalpb.LookupRequest{Parent: 1, Name: ".."})
	seed(2, &shoalpb.RenameRequest{OldParent: 1, OldName: "f", NewParent: 1, NewName: "g", Flags: 3})
	seed(3, &shoalpb.SetAttrRequest{Ino: 1, Mask: 8, Size: 1 << 62})
	seed(4, &shoalpb.AllocateChunkRequest{Ino: 2, Index: 1 << 60})
	seed(5, &shoalpb.CommitChunksRequest{Ino: 2, Chunks: []*shoalpb.ChunkCommit{{ChunkId: 9, Version: 0}}})
	seed(6, &shoalpb.ReadDirRequest{Ino: 1, After: "\x00", Limit: 1 << 31})
	seed(7, &shoalpb.UnlinkRequest{Parent: 1, Name: "", Dir: true})
	seed(8, &shoalpb.HeartbeatRequest{NodeId: "nobody"})
	seed(9, &shoalpb.LinkRequest{Ino: 1, NewParent: 1, NewName: "root-again"})

	m, _ := newManager(f)
	s := &service{m: m}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, op uint8, b []byte) {
		var err error
		call := func(req proto.Message, fn func() error) {
			if proto.Unmarshal(b, req) != nil {
				return
			}
			err = fn()
		}
		switch op % 10 {
		case 0:
			var r shoalpb.CreateRequest
			call(&r, func() error { _, e := s.Create(ctx, &r); return e })
		case 1:
			var r shoalpb.LookupRequest
			call(&r, func() error { _, e := s.Lookup(ctx, &r); return e })
		case 2:
			var r shoalpb.RenameRequest
			call(&r, func() error { _, e := s.Rename(ctx, &r); return e })
		case 3:
			var r shoalpb.SetAttrRequest
			call(&r, func() error { _, e := s.SetAttr(ctx, &r); return e })
		case 4:
			var r shoalpb.AllocateChunkRequest
			call(&r, func() error { _, e := s.AllocateChunk(ctx, &r); return e })
		case 5:
			var r shoalpb.CommitChunksRequest
			call(&r, func() error { _, e := s.CommitChunks(ctx, &r); return e })
		case 6:
			var r shoalpb.ReadDirRequest
			call(&r, func() error { _, e := s.ReadDir(ctx, &r); return e })
		case 7:
			var r shoalpb.UnlinkRequest
			call(&r, func() error { _, e := s.Unlink(ctx, &r); return e })
		case 8:
			var r shoalpb.HeartbeatRequest
			call(&r, func() error { _, e := s.Heartbeat(ctx, &r); return e })
		case 9:
			var r shoalpb.LinkRequest
			call(&r, func() error { _, e := s.Link(ctx, &r); return e })
		}
		if code := status.Code(err); code == codes.Internal || code == codes.Unknown {
			t.Fatalf("op %d: a malformed request got %v", op%10, err)
		}
		if a, err := m.GetAttr(ctx, RootIno); err != nil || !a.IsDir() {
			t.Fatalf("op %d: root after the request: %+v, %v", op%10, a, err)
		}
	})
}

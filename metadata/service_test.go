package metadata

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// serve starts m's service on a loopback port and returns a client.
func serve(t *testing.T, m *Manager) shoalpb.ManagerClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(transport.ServerOptions()...)
	m.RegisterService(g)
	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	conn, err := transport.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return shoalpb.NewManagerClient(conn)
}

// reasonOf returns the code and ErrorDetail reason of a status error.
func reasonOf(err error) (codes.Code, shoalpb.ErrorDetail_Reason) {
	st := status.Convert(err)
	for _, d := range st.Details() {
		if ed, ok := d.(*shoalpb.ErrorDetail); ok {
			return st.Code(), ed.GetReason()
		}
	}
	return st.Code(), shoalpb.ErrorDetail_UNSPECIFIED
}

func TestServiceErrors(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	c := serve(t, m)

	dir, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: "d", Mode: ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	d := dir.GetAttr().GetIno()
	file, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: d, Name: "f", Mode: 0o644, Exclusive: true})
	if err != nil || !file.GetCreated() {
		t.Fatalf("create file: %v, %v", file, err)
	}
	f := file.GetAttr().GetIno()
	if _, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: d, Name: "sub", Mode: ModeDir | 0o755}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason shoalpb.ErrorDetail_Reason
	}{
		{"lookup in inode 0", func() error { _, err := c.Lookup(ctx, &shoalpb.LookupRequest{Name: "x"}); return err }, codes.InvalidArgument, 0},
		{"lookup missing", func() error { _, err := c.Lookup(ctx, &shoalpb.LookupRequest{Parent: 1, Name: "x"}); return err }, codes.NotFound, 0},
		{"getattr missing", func() error { _, err := c.GetAttr(ctx, &shoalpb.GetAttrRequest{Ino: 4242}); return err }, codes.NotFound, 0},
		{"create bad name", func() error {
			_, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: "a/b", Mode: 0o644})
			return err
		}, codes.InvalidArgument, shoalpb.ErrorDetail_INVALID_NAME},
		{"create dot", func() error {
			_, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: "..", Mode: 0o644})
			return err
		}, codes.InvalidArgument, shoalpb.ErrorDetail_INVALID_NAME},
		{"create long name", func() error {
			_, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: strings.Repeat("x", 256), Mode: 0o644})
			return err
		}, codes.InvalidArgument, shoalpb.ErrorDetail_NAME_TOO_LONG},
		{"create exclusive existing", func() error {
			_, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: d, Name: "f", Mode: 0o644, Exclusive: true})
			return err
		}, codes.AlreadyExists, 0},
		{"create absurd chunk size", func() error {
			_, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: "big", Mode: 0o644, ChunkSize: 1 << 40})
			return err
		}, codes.InvalidArgument, 0},
		{"create in a file", func() error {
			_, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: f, Name: "x", Mode: 0o644})
			return err
		}, codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR},
		{"rmdir non-empty", func() error {
			_, err := c.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: 1, Name: "d", Dir: true})
			return err
		}, codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_EMPTY},
		{"rmdir a file", func() error {
			_, err := c.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: d, Name: "f", Dir: true})
			return err
		}, codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR},
		{"unlink a directory", func() error { _, err := c.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: d, Name: "sub"}); return err }, codes.FailedPrecondition, shoalpb.ErrorDetail_IS_DIR},
		{"rename into own subtree", func() error {
			_, err := c.Rename(ctx, &shoalpb.RenameRequest{OldParent: 1, OldName: "d", NewParent: d, NewName: "d"})
			return err
		}, codes.FailedPrecondition, shoalpb.ErrorDetail_LOOP},
		{"rename noreplace", func() error {
			_, err := c.Rename(ctx, &shoalpb.RenameRequest{OldParent: d, OldName: "f", NewParent: d, NewName: "sub", Flags: RenameNoReplace})
			return err
		}, codes.AlreadyExists, 0},
		{"rename zero parent", func() error {
			_, err := c.Rename(ctx, &shoalpb.RenameRequest{OldParent: 0, OldName: "f", NewParent: d, NewName: "g"})
			return err
		}, codes.InvalidArgument, 0},
		{"setattr unknown mask", func() error { _, err := c.SetAttr(ctx, &shoalpb.SetAttrRequest{Ino: f, Mask: 1 << 10}); return err }, codes.InvalidArgument, 0},
		{"setattr absurd size", func() error {
			_, err := c.SetAttr(ctx, &shoalpb.SetAttrRequest{Ino: f, Mask: SetSize, Size: 1 << 62})
			return err
		}, codes.InvalidArgument, 0},
		{"truncate a directory", func() error { _, err := c.SetAttr(ctx, &shoalpb.SetAttrRequest{Ino: d, Mask: SetSize}); return err }, codes.FailedPrecondition, shoalpb.ErrorDetail_IS_DIR},
		{"allocate without chunkservers", func() error { _, err := c.AllocateChunk(ctx, &shoalpb.AllocateChunkRequest{Ino: f}); return err }, codes.ResourceExhausted, shoalpb.ErrorDetail_NO_SPACE},
		{"commit unallocated", func() error {
			_, err := c.CommitChunks(ctx, &shoalpb.CommitChunksRequest{Ino: f, Chunks: []*shoalpb.ChunkCommit{{ChunkId: 5, Version: 1, Length: 1}}})
			return err
		}, codes.Aborted, shoalpb.ErrorDetail_STALE_VERSION},
		{"commit zero chunk", func() error {
			_, err := c.CommitChunks(ctx, &shoalpb.CommitChunksRequest{Ino: f, Chunks: []*shoalpb.ChunkCommit{{Version: 1}}})
			return err
		}, codes.InvalidArgument, 0},
		{"readdir a file", func() error { _, err := c.ReadDir(ctx, &shoalpb.ReadDirRequest{Ino: f}); return err }, codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR},
		{"layout of a directory", func() error { _, err := c.GetLayout(ctx, &shoalpb.GetLayoutRequest{Ino: d}); return err }, codes.FailedPrecondition, shoalpb.ErrorDetail_IS_DIR},
		{"register without address", func() error { _, err := c.Register(ctx, &shoalpb.RegisterRequest{}); return err }, codes.InvalidArgument, 0},
		{"heartbeat without id", func() error { _, err := c.Heartbeat(ctx, &shoalpb.HeartbeatRequest{}); return err }, codes.InvalidArgument, 0},
		{"decommission unknown", func() error { _, err := c.Decommission(ctx, &shoalpb.DecommissionRequest{Node: "x"}); return err }, codes.NotFound, 0},
		{"report bad replica without node", func() error {
			_, err := c.ReportBadReplica(ctx, &shoalpb.ReportBadReplicaRequest{ChunkId: 1})
			return err
		}, codes.InvalidArgument, 0},
		{"fsck missing inode", func() error { _, err := c.Fsck(ctx, &shoalpb.FsckRequest{Ino: 4242}); return err }, codes.NotFound, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := reasonOf(tc.call())
			if code != tc.code || reason != tc.reason {
				t.Fatalf("got %v/%v, want %v/%v", code, reason, tc.code, tc.reason)
			}
		})
	}
}

func TestServiceWriteRead(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	c := serve(t, m)
	for i := 1; i <= 3; i++ {
		r, err := c.Register(ctx, &shoalpb.RegisterRequest{Addr: fmt.Sprintf("127.0.0.1:%d", 9500+i), Rack: "r", CapacityBytes: 1 << 30})
		if err != nil || r.GetNodeId() == "" || r.GetHeartbeatIntervalNs() <= 0 {
			t.Fatalf("register: %v, %v", r, err)
		}
	}
	cr, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: "f", Mode: ModeRegular | 0o600, Uid: 7, ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ino := cr.GetAttr().GetIno()
	if cr.GetAttr().GetChunkSize() != 64<<10 || cr.GetAttr().GetUid() != 7 {
		t.Fatalf("created %v", cr.GetAttr())
	}
	al, err := c.AllocateChunk(ctx, &shoalpb.AllocateChunkRequest{Ino: ino, Index: 2})
	if err != nil || len(al.GetTargets()) != 3 || al.GetMinReplicas() != 2 || al.GetVersion() != 1 {
		t.Fatalf("allocate: %v, %v", al, err)
	}
	var ids []string
	for _, l := range al.GetTargets() {
		ids = append(ids, l.GetNodeId())
	}
	cm, err := c.CommitChunks(ctx, &shoalpb.CommitChunksRequest{Ino: ino, MinSize: 2*64<<10 + 10, MtimeNs: 5,
		Chunks: []*shoalpb.ChunkCommit{{Index: 2, ChunkId: al.GetChunkId(), Version: 1, Length: 10, Summary: 3, NodeIds: ids}}})
	if err != nil || cm.GetAttr().GetSize() != 2*64<<10+10 || cm.GetAttr().GetMtimeNs() != 5 {
		t.Fatalf("commit: %v, %v", cm, err)
	}
	lay, err := c.GetLayout(ctx, &shoalpb.GetLayoutRequest{Ino: ino})
	if err != nil || len(lay.GetChunks()) != 1 || lay.GetChunks()[0].GetIndex() != 2 || len(lay.GetChunks()[0].GetReplicas()) != 3 ||
		lay.GetChunks()[0].GetReplicas()[0].GetAddr() == "" || lay.GetChunks()[0].GetSummary() != 3 {
		t.Fatalf("layout: %v, %v", lay, err)
	}
	rd, err := c.ReadDir(ctx, &shoalpb.ReadDirRequest{Ino: 1, Plus: true})
	if err != nil || !rd.GetEof() || len(rd.GetEntries()) != 1 || rd.GetEntries()[0].GetAttr().GetSize() != cm.GetAttr().GetSize() {
		t.Fatalf("readdir: %v, %v", rd, err)
	}
	fs, err := c.StatFS(ctx, &shoalpb.StatFSRequest{})
	if err != nil || fs.GetCapacityBytes() != 3<<30 || fs.GetFiles() != 2 || fs.GetNameMax() != 255 {
		t.Fatalf("statfs: %v, %v", fs, err)
	}
	st, err := c.Status(ctx, &shoalpb.StatusRequest{})
	if err != nil || len(st.GetNodes()) != 3 || st.GetChunks() != 1 || st.GetFiles() != 1 || st.GetNodes()[0].GetState() != "live" || st.GetHealer() != nil {
		t.Fatalf("status: %v, %v", st, err)
	}
	fk, err := c.Fsck(ctx, &shoalpb.FsckRequest{})
	if err != nil || fk.GetFiles() != 1 || fk.GetHealthy() != 1 {
		t.Fatalf("fsck: %v, %v", fk, err)
	}
	hb, err := c.Heartbeat(ctx, &shoalpb.HeartbeatRequest{NodeId: "nobody"})
	if err != nil || !hb.GetReregister() {
		t.Fatalf("heartbeat of an unknown node: %v, %v", hb, err)
	}
	un, err := c.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: 1, Name: "f"})
	if err != nil || un.GetIno() != ino || !un.GetRemoved() {
		t.Fatalf("unlink: %v, %v", un, err)
	}
	hb, err = c.Heartbeat(ctx, &shoalpb.HeartbeatRequest{NodeId: ids[0], CapacityBytes: 1 << 30})
	if err != nil || len(hb.GetDelete()) != 1 || hb.GetDelete()[0].GetChunkId() != al.GetChunkId() {
		t.Fatalf("heartbeat after unlink: %v, %v", hb, err)
	}
}

func TestToStatus(t *testing.T) {
	m, _ := newManager(t)
	s := &service{m: m}
	tests := []struct {
		err    error
		code   codes.Code
		reason shoalpb.ErrorDetail_Reason
	}{
		{nil, codes.OK, 0},
		{context.Canceled, codes.Canceled, 0},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, 0},
		{fmt.Errorf("lookup: %w", ErrNotFound), codes.NotFound, 0},
		{ErrExists, codes.AlreadyExists, 0},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrNotEmpty)), codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_EMPTY},
		{ErrNotDir, codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR},
		{ErrIsDir, codes.FailedPrecondition, shoalpb.ErrorDetail_IS_DIR},
		{ErrLoop, codes.FailedPrecondition, shoalpb.ErrorDetail_LOOP},
		{ErrStaleVersion, codes.Aborted, shoalpb.ErrorDetail_STALE_VERSION},
		{ErrNoChunkServers, codes.ResourceExhausted, shoalpb.ErrorDetail_NO_SPACE},
		{validateName("a/b"), codes.InvalidArgument, shoalpb.ErrorDetail_INVALID_NAME},
		{validateName(strings.Repeat("a", 300)), codes.InvalidArgument, shoalpb.ErrorDetail_NAME_TOO_LONG},
		{ErrInvalid, codes.InvalidArgument, 0},
		{ErrClosed, codes.Unavailable, 0},
		{errors.New("disk on fire"), codes.Internal, 0},
	}
	for _, tc := range tests {
		code, reason := reasonOf(s.toStatus(tc.err))
		if code != tc.code || reason != tc.reason {
			t.Errorf("toStatus(%v) = %v/%v, want %v/%v", tc.err, code, reason, tc.code, tc.reason)
		}
	}
}

// TestParentAttrsInReplies checks that every namespace mutation's reply
// carries its parents' attributes exactly as a GetAttr right after returns
// them: the mount answers the kernel's next GETATTR of the parent from it.
func TestParentAttrsInReplies(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	c := serve(t, m)
	getattr := func(ino uint64) *shoalpb.Attr {
		t.Helper()
		r, err := c.GetAttr(ctx, &shoalpb.GetAttrRequest{Ino: ino})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetAttr()
	}
	check := func(what string, got *shoalpb.Attr, ino uint64) {
		t.Helper()
		want := getattr(ino)
		if got == nil || !proto.Equal(got, want) {
			t.Fatalf("%s: parent in the reply %v, GetAttr %v", what, got, want)
		}
		if got.GetMtimeNs() != clk.Now().UnixNano() || got.GetCtimeNs() != clk.Now().UnixNano() {
			t.Fatalf("%s: parent times %d/%d, want now %d", what, got.GetMtimeNs(), got.GetCtimeNs(), clk.Now().UnixNano())
		}
	}
	step := func() { clk.Advance(time.Second) }

	step()
	dr, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: "d", Mode: ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	check("mkdir", dr.GetParent(), 1)
	if dr.GetParent().GetNlink() != 3 {
		t.Fatalf("root nlink %d after mkdir, want 3", dr.GetParent().GetNlink())
	}
	d := dr.GetAttr().GetIno()
	step()
	d2r, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: 1, Name: "d2", Mode: ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	d2 := d2r.GetAttr().GetIno()
	step()
	fr, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: d, Name: "f", Mode: 0o644, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	check("create", fr.GetParent(), d)
	f := fr.GetAttr().GetIno()
	step()
	sr, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: d, Name: "s", Mode: ModeSymlink | 0o777, SymlinkTarget: "f"})
	if err != nil {
		t.Fatal(err)
	}
	check("symlink", sr.GetParent(), d)
	step()
	lr, err := c.Link(ctx, &shoalpb.LinkRequest{Ino: f, NewParent: d2, NewName: "hard"})
	if err != nil {
		t.Fatal(err)
	}
	check("link", lr.GetParent(), d2)
	step()
	// A non-exclusive create of an existing file changes nothing: the
	// parent is as it was.
	again, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: d, Name: "f", Mode: 0o644})
	if err != nil || again.GetCreated() {
		t.Fatalf("create existing: %v, %v", again, err)
	}
	if want := getattr(d); !proto.Equal(again.GetParent(), want) {
		t.Fatalf("create existing: parent %v, GetAttr %v", again.GetParent(), want)
	}
	step()
	// A directory moved across directories changes both parents' nlink.
	if _, err := c.Create(ctx, &shoalpb.CreateRequest{Parent: d, Name: "sub", Mode: ModeDir | 0o755}); err != nil {
		t.Fatal(err)
	}
	step()
	rr, err := c.Rename(ctx, &shoalpb.RenameRequest{OldParent: d, OldName: "sub", NewParent: d2, NewName: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	check("rename old parent", rr.GetOldParent(), d)
	check("rename new parent", rr.GetNewParent(), d2)
	if rr.GetOldParent().GetNlink() != 2 || rr.GetNewParent().GetNlink() != 3 {
		t.Fatalf("nlinks after moving a directory: %d, %d; want 2, 3", rr.GetOldParent().GetNlink(), rr.GetNewParent().GetNlink())
	}
	step()
	rr, err = c.Rename(ctx, &shoalpb.RenameRequest{OldParent: d, OldName: "f", NewParent: d, NewName: "g"})
	if err != nil {
		t.Fatal(err)
	}
	check("rename within a directory", rr.GetOldParent(), d)
	check("rename within a directory (new)", rr.GetNewParent(), d)
	step()
	ur, err := c.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: d, Name: "g"})
	if err != nil {
		t.Fatal(err)
	}
	check("unlink", ur.GetParent(), d)
	step()
	ur, err = c.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: d2, Name: "sub", Dir: true})
	if err != nil {
		t.Fatal(err)
	}
	check("rmdir", ur.GetParent(), d2)
	if ur.GetParent().GetNlink() != 2 {
		t.Fatalf("nlink %d after rmdir, want 2", ur.GetParent().GetNlink())
	}
	// After a setattr on the directory (which folds its stamp into its
	// record) the next change still reports what GetAttr returns.
	step()
	if _, err := c.SetAttr(ctx, &shoalpb.SetAttrRequest{Ino: d, Mask: SetMode, Mode: 0o700}); err != nil {
		t.Fatal(err)
	}
	step()
	ur, err = c.Unlink(ctx, &shoalpb.UnlinkRequest{Parent: d, Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	check("unlink after chmod", ur.GetParent(), d)
	if ur.GetParent().GetMode()&0o7777 != 0o700 {
		t.Fatalf("mode %o after chmod", ur.GetParent().GetMode())
	}
}

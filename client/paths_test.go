package client

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"slices"
	"syscall"
	"testing"
)

func names(ents []DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	return out
}

func TestPaths(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()

	if _, err := c.Resolve(ctx, "relative/path"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Resolve(relative) = %v, want EINVAL", err)
	}
	d, err := c.MkdirAll(ctx, "/a/b/c", 0o755)
	if err != nil || !d.IsDir() {
		t.Fatalf("MkdirAll = %+v, %v", d, err)
	}
	if d2, err := c.MkdirAll(ctx, "/a//b/./c/", 0o755); err != nil || d2.Ino != d.Ino {
		t.Errorf("MkdirAll again = %+v, %v; want the same directory", d2, err)
	}
	data := []byte("some bytes")
	var progress []int64
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/a/b/file", func(done, total int64) {
		progress = append(progress, done, total)
	})
	if err != nil || a.Size != uint64(len(data)) {
		t.Fatalf("Put = %+v, %v", a, err)
	}
	if !slices.Equal(progress, []int64{10, 10}) {
		t.Errorf("progress calls %v", progress)
	}
	// Put over an existing file truncates it.
	if _, err := c.Put(ctx, bytes.NewReader([]byte("xy")), -1, "/a/b/file", nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := c.Get(ctx, "/a/b/file", &out, nil); err != nil || out.String() != "xy" {
		t.Errorf("Get after overwrite = %q, %v", out.String(), err)
	}
	if _, err := c.Put(ctx, bytes.NewReader(data), 99, "/a/b/short", nil); err == nil {
		t.Error("Put with a wrong size succeeded")
	}
	if _, err := c.MkdirAll(ctx, "/a/b/file/x", 0o755); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("MkdirAll through a file = %v, want ENOTDIR", err)
	}
	if _, err := c.Put(ctx, bytes.NewReader(data), -1, "/nope/file", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Put into a missing dir = %v, want ENOENT", err)
	}
	if _, err := c.Get(ctx, "/a", &out, nil); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Get(dir) = %v, want EISDIR", err)
	}

	ents, err := c.List(ctx, "/a/b")
	if err != nil || !slices.Equal(names(ents), []string{"c", "file", "short"}) || ents[1].Attr == nil || ents[1].Attr.Size != 2 {
		t.Errorf("List(/a/b) = %v, %v", ents, err)
	}
	if ents, err := c.List(ctx, "/a/b/file"); err != nil || len(ents) != 1 || ents[0].Name != "file" {
		t.Errorf("List(file) = %v, %v", ents, err)
	}

	if err := c.RenamePath(ctx, "/a/b/file", "/a/moved"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(ctx, "/a/b/file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old name after rename: %v", err)
	}
	if _, err := c.Resolve(ctx, "/a/moved"); err != nil {
		t.Errorf("new name after rename: %v", err)
	}

	if err := c.Remove(ctx, "/a", false); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("Remove(non-empty, !recursive) = %v, want ENOTEMPTY", err)
	}
	if err := c.Remove(ctx, "/", true); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Remove(/) = %v, want EINVAL", err)
	}
	if err := c.Remove(ctx, "/a", true); err != nil {
		t.Fatal(err)
	}
	if ents, err := c.List(ctx, "/"); err != nil || len(ents) != 0 {
		t.Errorf("root after Remove = %v, %v", ents, err)
	}
}

func TestAdmin(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 2, replication: 2, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || st.Nodes[0].ID != "node0" || st.Nodes[0].State != "live" || st.Replication != 2 ||
		st.UnderReplicated != 1 || st.Healer.Queued != 2 || st.Healer.Deleted != 3 || st.Nodes[0].LastHeartbeat.Unix() != 1 {
		t.Errorf("Status = %+v", st)
	}
	if _, err := c.MkdirAll(ctx, "/d", 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := c.Fsck(ctx, "/d")
	if err != nil {
		t.Fatal(err)
	}
	// The fake echoes the inode it was asked about in Files.
	if r.Files != 2 || r.Missing != 1 || r.OK() || len(r.Problems) != 1 || r.Problems[0].State != "missing" {
		t.Errorf("Fsck(/d) = %+v", r)
	}
	if r, err := c.Fsck(ctx, ""); err != nil || r.Files != 0 {
		t.Errorf("Fsck(\"\") = %+v, %v; want the whole namespace (ino 0)", r, err)
	}
	if _, err := c.Fsck(ctx, "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Fsck(missing) = %v", err)
	}
	if err := c.Decommission(ctx, "node1"); err != nil {
		t.Error(err)
	}
	if err := c.Decommission(ctx, "node9"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Decommission(unknown) = %v", err)
	}
	sf, err := c.StatFS(ctx)
	if err != nil || sf.FreeBytes != 60 || sf.NameMax != 255 {
		t.Errorf("StatFS = %+v, %v", sf, err)
	}
}

// The manager fails calls with Unavailable: idempotent calls retry
// through it; non-idempotent ones whose reply was lost are interpreted.
func TestManagerRetries(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()

	fc.mgr.fault("Create", 2, false)
	if _, err := c.Mkdir(ctx, RootIno, "d", 0o755, 0, 0); err != nil {
		t.Fatalf("Mkdir through 2 Unavailable: %v", err)
	}
	fc.mgr.fault("Create", 1, true)
	if a, err := c.Mkdir(ctx, RootIno, "e", 0o755, 0, 0); err != nil || !a.IsDir() {
		t.Errorf("Mkdir with a lost reply = %+v, %v; want success", a, err)
	}
	fc.mgr.fault("Unlink", 1, true)
	if _, err := c.Rmdir(ctx, RootIno, "e"); err != nil {
		t.Errorf("Rmdir with a lost reply = %v; want success", err)
	}
	fc.mgr.fault("Create", 1, true)
	if _, err := c.Create(ctx, RootIno, "x", CreateOptions{Exclusive: true}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("exclusive Create with a lost reply = %v; want EEXIST (documented)", err)
	}
	fc.mgr.fault("Rename", 1, true)
	if _, err := c.Rename(ctx, RootIno, "x", RootIno, "y", 0, false); err != nil {
		t.Errorf("Rename with a lost reply = %v; want success", err)
	}
	// Writes go through a flaky manager too.
	fc.mgr.fault("AllocateChunk", 2, false)
	data := randBytes(70, 1000)
	a, err := c.Put(ctx, bytes.NewReader(data), int64(len(data)), "/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	fc.mgr.fault("CommitChunks", 1, true) // the commit applies; its retry is stale
	f, err := c.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(ctx, []byte("Z"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close with a lost commit reply: %v", err)
	}
	data[3] = 'Z'
	if got := readAll(t, c, a.Ino, 4096); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
}

// Namespace calls report the parent directories' attributes from the
// manager's reply, and none when a retry found a lost attempt's result.
func TestParentAttrs(t *testing.T) {
	fc := newFakeCluster(t, fakeOptions{nodes: 1, replication: 1, minReplicas: 1, chunkSize: mib})
	c := fc.client(t, nil)
	ctx := context.Background()
	wantParent := func(what string, p *Attr, ino Ino) {
		t.Helper()
		got, err := c.GetAttr(ctx, ino)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil || *p != got {
			t.Fatalf("%s: parent %+v, GetAttr %+v", what, p, got)
		}
	}
	d, err := c.Mkdir(ctx, RootIno, "d", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantParent("mkdir", d.Parent, RootIno)
	f, err := c.Create(ctx, d.Ino, "f", CreateOptions{Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	wantParent("create", f.Parent, d.Ino)
	rn, err := c.Rename(ctx, d.Ino, "f", RootIno, "g", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	wantParent("rename (old)", rn.OldParent, d.Ino)
	wantParent("rename (new)", rn.NewParent, RootIno)
	rm, err := c.Unlink(ctx, RootIno, "g", false)
	if err != nil || rm.Ino != f.Ino || !rm.Removed {
		t.Fatalf("Unlink = %+v, %v", rm, err)
	}
	wantParent("unlink", rm.Parent, RootIno)

	fc.mgr.fault("Create", 1, true)
	e, err := c.Mkdir(ctx, RootIno, "e", 0o755, 0, 0)
	if err != nil || !e.IsDir() || e.Parent != nil {
		t.Fatalf("Mkdir with a lost reply = %+v, %v; want the directory, no parent", e, err)
	}
	fc.mgr.fault("Unlink", 1, true)
	if rm, err := c.Rmdir(ctx, RootIno, "e"); err != nil || rm.Parent != nil {
		t.Fatalf("Rmdir with a lost reply = %+v, %v; want success, no parent", rm, err)
	}
}

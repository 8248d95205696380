package metadata

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRootExists(t *testing.T) {
	m, _ := newManager(t)
	a := mustAttr(t, m, RootIno)
	if !a.IsDir() || a.Mode&ModePerm != 0o755 || a.Nlink != 2 {
		t.Fatalf("root = %+v, want a 0755 directory with nlink 2", a)
	}
}

func TestCreateLookup(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	f := mustCreate(t, m, RootIno, "file", 0o644)
	if !f.IsRegular() || f.Nlink != 1 || f.ChunkSize != 1<<20 || f.Ino <= RootIno {
		t.Fatalf("created %+v", f)
	}
	got, err := m.Lookup(ctx, RootIno, "file")
	if err != nil || got != f {
		t.Fatalf("Lookup = %+v, %v; want %+v", got, err, f)
	}
	if got := mustAttr(t, m, RootIno); got.Mtime != clk.Now().UnixNano() {
		t.Fatalf("root mtime %d not stamped to %d", got.Mtime, clk.Now().UnixNano())
	}

	_, err = m.Lookup(ctx, RootIno, "missing")
	wantErr(t, "lookup missing", err, ErrNotFound)
	_, err = m.Lookup(ctx, f.Ino, "x")
	wantErr(t, "lookup in a file", err, ErrNotDir)
	_, err = m.Lookup(ctx, 12345, "x")
	wantErr(t, "lookup in a missing dir", err, ErrNotFound)
	_, err = m.Lookup(ctx, RootIno, "a/b")
	wantErr(t, "lookup bad name", err, ErrInvalid)
	_, err = m.GetAttr(ctx, 999)
	wantErr(t, "getattr missing", err, ErrNotFound)

	// Exclusive create of an existing name fails; non-exclusive returns the file.
	_, err = m.Create(ctx, RootIno, "file", CreateArgs{Mode: 0o600, Exclusive: true})
	wantErr(t, "exclusive create", err, ErrExists)
	again, err := m.Create(ctx, RootIno, "file", CreateArgs{Mode: 0o600})
	if err != nil || again.Created || again.Attr.Ino != f.Ino || again.Attr.Mode != f.Mode {
		t.Fatalf("non-exclusive create = %+v %v, want the existing file", again, err)
	}
	// Never for directories, or over a directory.
	d := mustCreate(t, m, RootIno, "dir", ModeDir|0o755)
	_, err = m.Create(ctx, RootIno, "dir", CreateArgs{Mode: ModeDir | 0o755})
	wantErr(t, "mkdir existing", err, ErrExists)
	_, err = m.Create(ctx, RootIno, "dir", CreateArgs{Mode: 0o644})
	wantErr(t, "create over a directory", err, ErrExists)
	_, err = m.Create(ctx, f.Ino, "x", CreateArgs{Mode: 0o644})
	wantErr(t, "create in a file", err, ErrNotDir)

	if d.Nlink != 2 || d.Parent != RootIno {
		t.Fatalf("new directory %+v", d)
	}
	if root := mustAttr(t, m, RootIno); root.Nlink != 3 {
		t.Fatalf("root nlink %d after mkdir, want 3", root.Nlink)
	}
}

func TestCreateKinds(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	tests := []struct {
		name  string
		args  CreateArgs
		want  error
		check func(Attr) bool
	}{
		{"regular default type", CreateArgs{Mode: 0o640}, nil, func(a Attr) bool { return a.IsRegular() && a.Mode&ModePerm == 0o640 }},
		{"own chunk size", CreateArgs{Mode: 0o644, ChunkSize: 64 << 10}, nil, func(a Attr) bool { return a.ChunkSize == 64<<10 }},
		{"chunk size too small", CreateArgs{Mode: 0o644, ChunkSize: 100}, ErrInvalid, nil},
		{"symlink", CreateArgs{Mode: ModeSymlink | 0o777, Target: "../t"}, nil, func(a Attr) bool { return a.Target == "../t" && a.ChunkSize == 0 && a.Size == 4 }},
		{"symlink without target", CreateArgs{Mode: ModeSymlink | 0o777}, ErrInvalid, nil},
		{"symlink target too long", CreateArgs{Mode: ModeSymlink, Target: strings.Repeat("t", MaxSymlinkTarget+1)}, ErrInvalid, nil},
		{"fifo", CreateArgs{Mode: modeFIFO | 0o600}, nil, func(a Attr) bool { return a.Mode&ModeType == modeFIFO }},
		{"char device", CreateArgs{Mode: modeChar | 0o600, Rdev: 0x0103}, nil, func(a Attr) bool { return a.Rdev == 0x0103 }},
		{"bogus type", CreateArgs{Mode: 0o170000}, ErrInvalid, nil},
		{"owner", CreateArgs{Mode: 0o644, UID: 1000, GID: 100}, nil, func(a Attr) bool { return a.UID == 1000 && a.GID == 100 }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := m.Create(ctx, RootIno, fmt.Sprintf("f%d", i), tc.args)
			wantErr(t, "create", err, tc.want)
			if tc.check != nil && !tc.check(r.Attr) {
				t.Fatalf("created %+v", r.Attr)
			}
		})
	}
	for _, name := range []string{"", ".", "..", "a/b", "a\x00"} {
		_, err := m.Create(ctx, RootIno, name, CreateArgs{Mode: 0o644})
		wantErr(t, fmt.Sprintf("create %q", name), err, errBadName)
	}
	_, err := m.Create(ctx, RootIno, strings.Repeat("n", 256), CreateArgs{Mode: 0o644})
	wantErr(t, "create long name", err, ErrNameTooLong)
}

func TestReadDirPagination(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	var want []string
	for i := 0; i < 25; i++ {
		name := fmt.Sprintf("e%03d", (i*7)%25) // created out of order
		mode := uint32(0o644)
		if i%5 == 0 {
			mode = ModeDir | 0o755
		}
		mustCreate(t, m, d.Ino, name, mode)
		want = append(want, name)
	}
	sort.Strings(want)

	var got []string
	after := ""
	pages := 0
	for {
		entries, eof, err := m.ReadDir(ctx, d.Ino, after, 10, true)
		if err != nil {
			t.Fatalf("ReadDir after %q: %v", after, err)
		}
		pages++
		for _, e := range entries {
			if e.Attr == nil || e.Attr.Ino != e.Ino || e.Attr.Mode&ModeType != e.Mode {
				t.Fatalf("entry %+v: attr %+v does not match", e, e.Attr)
			}
			got = append(got, e.Name)
		}
		if eof {
			break
		}
		if len(entries) != 10 {
			t.Fatalf("page %d has %d entries without eof", pages, len(entries))
		}
		after = entries[len(entries)-1].Name
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Fatalf("ReadDir in %d pages = %v, want %v in 3", pages, got, want)
	}
	// Without plus, no attrs; resuming after a name that is gone works.
	entries, eof, err := m.ReadDir(ctx, d.Ino, "e0105", 0, false)
	if err != nil || !eof || len(entries) != 14 || entries[0].Name != "e011" || entries[0].Attr != nil {
		t.Fatalf("ReadDir after a missing name = %d entries (first %+v), eof %v, %v", len(entries), entries, eof, err)
	}
	// eof is exact: a page that ends one entry short is not eof, a page
	// that takes the last entry is.
	entries, eof, err = m.ReadDir(ctx, d.Ino, "", 24, false)
	if err != nil || len(entries) != 24 || eof {
		t.Fatalf("ReadDir of all but one: %d entries, eof %v, %v", len(entries), eof, err)
	}
	entries, eof, err = m.ReadDir(ctx, d.Ino, "", 25, false)
	if err != nil || len(entries) != 25 || !eof {
		t.Fatalf("ReadDir exact page: %d entries, eof %v, %v", len(entries), eof, err)
	}
	entries, eof, err = m.ReadDir(ctx, d.Ino, entries[24].Name, 25, false)
	if err != nil || len(entries) != 0 || !eof {
		t.Fatalf("ReadDir past the end: %d entries, eof %v, %v", len(entries), eof, err)
	}
	if root := mustAttr(t, m, d.Ino); root.Nlink != 2+5 {
		t.Fatalf("dir nlink %d, want 7", root.Nlink)
	}
	f := mustCreate(t, m, RootIno, "plain", 0o644)
	_, _, err = m.ReadDir(ctx, f.Ino, "", 0, false)
	wantErr(t, "readdir a file", err, ErrNotDir)
}

func TestHardLinks(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	f := mustCreate(t, m, RootIno, "a", 0o644)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	l, _, err := m.Link(ctx, f.Ino, d.Ino, "b")
	if err != nil || l.Nlink != 2 {
		t.Fatalf("Link = %+v, %v", l, err)
	}
	if got, err := m.Lookup(ctx, d.Ino, "b"); err != nil || got.Ino != f.Ino || got.Nlink != 2 {
		t.Fatalf("Lookup link = %+v, %v", got, err)
	}
	_, _, err = m.Link(ctx, f.Ino, d.Ino, "b")
	wantErr(t, "link over existing", err, ErrExists)
	_, _, err = m.Link(ctx, d.Ino, RootIno, "dirlink")
	wantErr(t, "link a directory", err, ErrIsDir)
	_, _, err = m.Link(ctx, 4242, RootIno, "x")
	wantErr(t, "link missing", err, ErrNotFound)

	r, err := m.Unlink(ctx, RootIno, "a", false, false)
	if err != nil || r.Ino != f.Ino || r.Removed {
		t.Fatalf("Unlink first link = %+v %v", r, err)
	}
	if a := mustAttr(t, m, f.Ino); a.Nlink != 1 {
		t.Fatalf("nlink %d after unlink, want 1", a.Nlink)
	}
	r, err = m.Unlink(ctx, d.Ino, "b", false, false)
	if err != nil || !r.Removed {
		t.Fatalf("Unlink last link = %+v %v", r, err)
	}
	_, err = m.GetAttr(ctx, f.Ino)
	wantErr(t, "getattr after last unlink", err, ErrNotFound)
}

func TestUnlinkRmdir(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	sub := mustCreate(t, m, d.Ino, "sub", ModeDir|0o755)
	f := mustCreate(t, m, d.Ino, "f", 0o644)
	if _, err := m.Create(ctx, RootIno, "s", CreateArgs{Mode: ModeSymlink | 0o777, Target: "d/f"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		parent  Ino
		entry   string
		dir     bool
		want    error
		wantIno Ino
	}{
		{"rmdir non-empty", RootIno, "d", true, ErrNotEmpty, 0},
		{"unlink a directory", d.Ino, "sub", false, ErrIsDir, 0},
		{"rmdir a file", d.Ino, "f", true, ErrNotDir, 0},
		{"unlink missing", d.Ino, "nope", false, ErrNotFound, 0},
		{"unlink bad name", d.Ino, "..", false, ErrInvalid, 0},
		{"rmdir empty", d.Ino, "sub", true, nil, sub.Ino},
		{"unlink file", d.Ino, "f", false, nil, f.Ino},
		{"rmdir now empty", RootIno, "d", true, nil, d.Ino},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := m.Unlink(ctx, tc.parent, tc.entry, tc.dir, false)
			wantErr(t, "unlink", err, tc.want)
			if tc.want == nil && (r.Ino != tc.wantIno || !r.Removed) {
				t.Fatalf("Unlink = %+v, want %d removed", r, tc.wantIno)
			}
			if tc.want == nil && r.Parent != mustAttr(t, m, tc.parent) {
				t.Fatalf("Unlink's parent %+v, GetAttr %+v", r.Parent, mustAttr(t, m, tc.parent))
			}
		})
	}
	if root := mustAttr(t, m, RootIno); root.Nlink != 2 {
		t.Fatalf("root nlink %d after rmdir, want 2", root.Nlink)
	}
	if got := m.inodes.Load(); got != 2 { // root and the symlink
		t.Fatalf("inode count %d, want 2", got)
	}
}

func TestSymlink(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	sr, err := m.Create(ctx, RootIno, "link", CreateArgs{Mode: ModeSymlink | 0o777, Target: "/etc/passwd"})
	s := sr.Attr
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Lookup(ctx, RootIno, "link")
	if err != nil || got.Target != "/etc/passwd" || got.Mode&ModeType != ModeSymlink || got.Size != uint64(len("/etc/passwd")) {
		t.Fatalf("Lookup symlink = %+v, %v", got, err)
	}
	_, chunks, err := m.GetLayout(ctx, s.Ino, 0, 0)
	if err != nil || len(chunks) != 0 {
		t.Fatalf("GetLayout of a symlink = %v, %v", chunks, err)
	}
	_, err = m.AllocateChunk(ctx, s.Ino, 0, nil)
	wantErr(t, "allocate on a symlink", err, ErrInvalid)
}

func TestSetAttr(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	clk.Advance(time.Second)
	now := clk.Now().UnixNano()

	a, err := m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetMode | SetUID | SetGID, Mode: ModeDir | 0o4711, UID: 5, GID: 6})
	if err != nil || a.Mode != ModeRegular|0o4711 || a.UID != 5 || a.GID != 6 || a.Ctime != now || a.Mtime != f.Mtime {
		t.Fatalf("chmod/chown = %+v, %v", a, err)
	}
	a, err = m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetAtime | SetMtime, Atime: 11, Mtime: 22})
	if err != nil || a.Atime != 11 || a.Mtime != 22 {
		t.Fatalf("utimens = %+v, %v", a, err)
	}
	a, err = m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: 5 << 20})
	if err != nil || a.Size != 5<<20 || a.Mtime != now {
		t.Fatalf("sparse extend = %+v, %v", a, err)
	}
	if got := mustAttr(t, m, f.Ino); got != a {
		t.Fatalf("GetAttr = %+v, want %+v", got, a)
	}
	_, err = m.SetAttr(ctx, d.Ino, SetAttrArgs{Mask: SetSize, Size: 0})
	wantErr(t, "truncate a directory", err, ErrIsDir)
	_, err = m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: MaxFileSize + 1})
	wantErr(t, "absurd size", err, ErrInvalid)
	_, err = m.SetAttr(ctx, 777, SetAttrArgs{Mask: SetMode})
	wantErr(t, "setattr missing", err, ErrNotFound)

	// A directory's times, set explicitly, win over its stamp; later
	// changes inside it stamp it again.
	a, err = m.SetAttr(ctx, d.Ino, SetAttrArgs{Mask: SetMtime, Mtime: 33})
	if err != nil || a.Mtime != 33 || mustAttr(t, m, d.Ino).Mtime != 33 {
		t.Fatalf("dir utimens = %+v, %v", a, err)
	}
	clk.Advance(time.Second)
	mustCreate(t, m, d.Ino, "x", 0o644)
	if got := mustAttr(t, m, d.Ino); got.Mtime != clk.Now().UnixNano() || got.Ctime != got.Mtime {
		t.Fatalf("dir times after create = %d/%d, want %d", got.Mtime, got.Ctime, clk.Now().UnixNano())
	}
}

func TestTruncateDropsChunks(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	nodes := registerNodes(t, m, 3, 3)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	const cs = 1 << 20
	var ids []ChunkID
	for i := uint64(0); i < 4; i++ {
		ids = append(ids, writeChunk(t, m, f.Ino, i, cs).Chunk)
	}
	if a := mustAttr(t, m, f.Ino); a.Size != 4*cs {
		t.Fatalf("size %d after 4 chunks", a.Size)
	}
	// Truncate into chunk 1: chunks 2 and 3 go, chunk 1 is trimmed.
	a, err := m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: cs + 100})
	if err != nil || a.Size != cs+100 {
		t.Fatalf("truncate = %+v, %v", a, err)
	}
	_, chunks, err := m.GetLayout(ctx, f.Ino, 0, 0)
	if err != nil || len(chunks) != 2 || chunks[1].Length != 100 || chunks[0].Length != cs || len(chunks[1].Replicas) != 3 {
		t.Fatalf("layout after truncate = %+v, %v", chunks, err)
	}
	replies := heartbeatAll(t, m, nodes)
	want := fmt.Sprintf("%d@1,%d@1", ids[2], ids[3])
	for _, id := range nodes {
		if got := strings.Join(deletesOf(replies[id]), ","); got != want {
			t.Fatalf("node %s deletes %s, want %s", id, got, want)
		}
	}
	// Deletes are sent once.
	for id, r := range heartbeatAll(t, m, nodes) {
		if len(r.Delete) != 0 {
			t.Fatalf("node %s got deletes twice: %v", id, deletesOf(r))
		}
	}
	// Truncating to a chunk boundary drops the chunk at it.
	if _, err := m.SetAttr(ctx, f.Ino, SetAttrArgs{Mask: SetSize, Size: cs}); err != nil {
		t.Fatal(err)
	}
	if _, chunks, _ := m.GetLayout(ctx, f.Ino, 0, 0); len(chunks) != 1 {
		t.Fatalf("layout after truncate to one chunk: %+v", chunks)
	}
	if st, _ := m.Status(ctx); st.Chunks != 1 {
		t.Fatalf("status counts %d chunks, want 1", st.Chunks)
	}
}

func TestKeepOpenRelease(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	nodes := registerNodes(t, m, 2, 1)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	al := writeChunk(t, m, f.Ino, 0, 10)

	r, err := m.Unlink(ctx, RootIno, "f", false, true)
	if err != nil || r.Ino != f.Ino || r.Removed {
		t.Fatalf("Unlink keep_open = %+v %v", r, err)
	}
	a := mustAttr(t, m, f.Ino) // still readable while open
	if a.Nlink != 0 || a.Size != 10 {
		t.Fatalf("kept inode %+v", a)
	}
	if _, chunks, err := m.GetLayout(ctx, f.Ino, 0, 0); err != nil || len(chunks) != 1 {
		t.Fatalf("layout of kept inode %v, %v", chunks, err)
	}
	if _, err := m.Lookup(ctx, RootIno, "f"); !isNotFound(err) {
		t.Fatalf("Lookup after unlink: %v", err)
	}
	for _, r := range heartbeatAll(t, m, nodes) {
		if len(r.Delete) != 0 {
			t.Fatalf("deletes before release: %v", deletesOf(r))
		}
	}
	if err := m.ReleaseInode(ctx, f.Ino); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetAttr(ctx, f.Ino); !isNotFound(err) {
		t.Fatalf("GetAttr after release: %v", err)
	}
	for id, r := range heartbeatAll(t, m, nodes) {
		if got := strings.Join(deletesOf(r), ","); got != fmt.Sprintf("%d@1", al.Chunk) {
			t.Fatalf("node %s deletes after release: %s", id, got)
		}
	}
	if err := m.ReleaseInode(ctx, f.Ino); err != nil {
		t.Fatalf("second release: %v", err)
	}
	// Release of a linked inode does nothing.
	g := mustCreate(t, m, RootIno, "g", 0o644)
	if err := m.ReleaseInode(ctx, g.Ino); err != nil || mustAttr(t, m, g.Ino).Nlink != 1 {
		t.Fatalf("release of a linked inode: %v", err)
	}
	if n := m.files.Load(); n != 1 {
		t.Fatalf("file count %d, want 1", n)
	}
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	cfg := testConfig(t, clk)
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodes := registerNodes(t, m, 3, 1)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o700)
	f := mustCreate(t, m, d.Ino, "f", 0o644)
	if _, _, err := m.Link(ctx, f.Ino, RootIno, "hard"); err != nil {
		t.Fatal(err)
	}
	al := writeChunk(t, m, f.Ino, 0, 1234)
	mustCreate(t, m, RootIno, "gone", 0o644)
	if _, err := m.Unlink(ctx, RootIno, "gone", false, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Decommission(ctx, nodes[2]); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.GetAttr(ctx, RootIno); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetAttr after Close: %v", err)
	}

	m2 := openManager(t, cfg)
	if !m2.SafeMode() {
		t.Fatal("not in safe mode after restart with registered nodes")
	}
	got, err := m2.Lookup(ctx, d.Ino, "f")
	if err != nil || got.Ino != f.Ino || got.Nlink != 2 || got.Size != 1234 {
		t.Fatalf("file after restart = %+v, %v", got, err)
	}
	if dd := mustAttr(t, m2, d.Ino); dd.Mode != ModeDir|0o700 || dd.Parent != RootIno {
		t.Fatalf("dir after restart = %+v", dd)
	}
	if _, err := m2.Lookup(ctx, RootIno, "gone"); !isNotFound(err) {
		t.Fatalf("unlinked file after restart: %v", err)
	}
	_, chunks, err := m2.GetLayout(ctx, f.Ino, 0, 0)
	if err != nil || len(chunks) != 1 || chunks[0].Chunk != al.Chunk || len(chunks[0].Replicas) != 0 {
		t.Fatalf("layout after restart = %+v, %v (no replicas known before reports)", chunks, err)
	}
	if m2.inodes.Load() != 3 || m2.files.Load() != 1 { // root, d, f
		t.Fatalf("counts after restart: %d inodes, %d files", m2.inodes.Load(), m2.files.Load())
	}
	// New numbers are above old ones: never reused.
	n := mustCreate(t, m2, RootIno, "new", 0o644)
	if n.Ino <= f.Ino {
		t.Fatalf("inode %d reused after restart (had %d)", n.Ino, f.Ino)
	}
	st, err := m2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 3 || st.Nodes[0].State != NodeDead || st.Missing != 1 {
		t.Fatalf("status after restart: %+v", st)
	}
	// The draining flag survived.
	for _, id := range nodes {
		if _, err := m2.Register(ctx, RegisterArgs{NodeID: id, Addr: "127.0.0.1:1", Capacity: 1 << 30,
			Chunks: []ReplicaReport{{Chunk: al.Chunk, Version: 1, Length: 1234}}}); err != nil {
			t.Fatal(err)
		}
	}
	if m2.SafeMode() {
		t.Fatal("still in safe mode after every node reported")
	}
	st, _ = m2.Status(ctx)
	if st.Nodes[2].State != NodeDraining || st.UnderReplicated != 1 {
		t.Fatalf("after reports: node states %+v, under %d", st.Nodes, st.UnderReplicated)
	}
}

// TestConcurrentCreates runs creates in one directory in parallel: none
// may be lost to a conflict, and the counts must add up.
func TestConcurrentCreates(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				mode := uint32(0o644)
				if i%10 == 0 {
					mode = ModeDir | 0o755 // mkdirs conflict on the parent and retry
				}
				if _, err := m.Create(ctx, d.Ino, fmt.Sprintf("w%d-%d", w, i), CreateArgs{Mode: mode, Exclusive: true}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	entries, eof, err := m.ReadDir(ctx, d.Ino, "", maxReadDirLimit, false)
	if err != nil || !eof || len(entries) != workers*each {
		t.Fatalf("ReadDir: %d entries, eof %v, %v", len(entries), eof, err)
	}
	if a := mustAttr(t, m, d.Ino); a.Nlink != 2+workers*each/10 {
		t.Fatalf("nlink %d, want %d", a.Nlink, 2+workers*each/10)
	}
}

// A file unlinked while open and never released (its mount died) is
// removed once OrphanTTL has passed, and not before.
func TestPurgeOrphans(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	f := mustCreate(t, m, RootIno, "f", 0o644)
	if _, err := m.Unlink(ctx, RootIno, "f", false, true); err != nil {
		t.Fatal(err)
	}
	g := mustCreate(t, m, RootIno, "g", 0o644) // linked: never purged
	clk.Advance(m.cfg.orphanTTL() - time.Second)
	if err := m.PurgeOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	mustAttr(t, m, f.Ino) // still kept
	clk.Advance(2 * time.Second)
	if err := m.PurgeOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetAttr(ctx, f.Ino); !isNotFound(err) {
		t.Fatalf("GetAttr of an expired unreleased inode: %v", err)
	}
	mustAttr(t, m, g.Ino)
}

// TestUnlinkFiles removes a batch of names in one call: each succeeds or
// fails on its own, a refused name is left as it was, the last result for
// a directory describes it after the call, and the removed files' chunks
// become garbage.
func TestUnlinkFiles(t *testing.T) {
	ctx := context.Background()
	m, clk := newManager(t)
	nodes := registerNodes(t, m, 3, 3)
	d := mustCreate(t, m, RootIno, "d", ModeDir|0o755)
	sub := mustCreate(t, m, d.Ino, "sub", ModeDir|0o755)
	a := mustCreate(t, m, d.Ino, "a", 0o644)
	b := mustCreate(t, m, d.Ino, "b", 0o644)
	c := mustCreate(t, m, RootIno, "c", 0o644)
	al := writeChunk(t, m, a.Ino, 0, 100)
	if _, _, err := m.Link(ctx, b.Ino, RootIno, "b2"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)

	ops := []UnlinkOp{
		{Parent: d.Ino, Name: "a"},
		{Parent: d.Ino, Name: "sub"},  // a directory
		{Parent: d.Ino, Name: "nope"}, // missing
		{Parent: d.Ino, Name: ".."},   // bad name
		{Parent: d.Ino, Name: "b"},    // still linked as b2
		{Parent: RootIno, Name: "c"},
		{Parent: d.Ino, Name: "a"}, // gone by now
	}
	rs, errs, err := m.UnlinkFiles(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	wantErrs := []error{nil, ErrIsDir, ErrNotFound, ErrInvalid, nil, nil, ErrNotFound}
	for i, want := range wantErrs {
		wantErr(t, fmt.Sprintf("op %d (%q)", i, ops[i].Name), errs[i], want)
	}
	if rs[0].Ino != a.Ino || !rs[0].Removed || rs[4].Ino != b.Ino || rs[4].Removed || rs[5].Ino != c.Ino || !rs[5].Removed {
		t.Fatalf("results %+v", rs)
	}
	if got := mustAttr(t, m, d.Ino); rs[4].Parent != got {
		t.Fatalf("last result for d has parent %+v, GetAttr %+v", rs[4].Parent, got)
	}
	if got := mustAttr(t, m, RootIno); rs[5].Parent != got {
		t.Fatalf("result for root has parent %+v, GetAttr %+v", rs[5].Parent, got)
	}
	if got := mustAttr(t, m, sub.Ino); !got.IsDir() {
		t.Fatalf("refused directory changed: %+v", got)
	}
	if got := mustAttr(t, m, b.Ino); got.Nlink != 1 {
		t.Fatalf("b nlink %d after one of its two names went", got.Nlink)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := m.Lookup(ctx, d.Ino, name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("lookup %q after the batch: %v", name, err)
		}
	}
	if _, err := m.Lookup(ctx, d.Ino, "sub"); err != nil {
		t.Fatalf("lookup sub after the batch: %v", err)
	}
	for id, r := range heartbeatAll(t, m, nodes) {
		if got, want := strings.Join(deletesOf(r), ","), fmt.Sprintf("%d@%d", al.Chunk, al.Version); got != want {
			t.Fatalf("node %s deletes %q, want %q", id, got, want)
		}
	}

	big := make([]UnlinkOp, MaxUnlinkBatch+1)
	for i := range big {
		big[i] = UnlinkOp{Parent: d.Ino, Name: "x"}
	}
	if _, _, err := m.UnlinkFiles(ctx, big); !errors.Is(err, ErrInvalid) {
		t.Fatalf("UnlinkFiles of %d names: %v, want ErrInvalid", len(big), err)
	}
}

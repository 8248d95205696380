package fuse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// fileCases are file semantics checked with system calls: each gets the
// cluster, a fresh directory in the mount, and that directory's path in
// the cluster's namespace.
var fileCases = []struct {
	name string
	fn   func(t *testing.T, c *clustertest.Cluster, dir, remote string)
}{
	{"O_EXCL", testExcl},
	{"O_APPEND", testAppend},
	{"O_TRUNC", testTrunc},
	{"handles share buffered writes", testSharedHandles},
	{"unlink open file", testUnlinkOpen},
	{"rename over open file", testRenameOverOpen},
	{"fsync is durable before close", testFsync},
	{"close is durable", testCloseDurable},
	{"ftruncate through handle", testFtruncate},
	{"utimens", testUtimens},
	{"attributes set while writing", testDeferredAttrs},
	{"editor save", testEditorSave},
	{"sparse file over 4 GiB", testHugeSparse},
	{"mmap", testMmap},
	{"fifo", testFifo},
	{"statfs", testStatfs},
	{"block size and blocks", testBlocks},
	{"xattr", testXattr},
	{"inode numbers", testInodeNumbers},
	{"hard link count", testLinkCount},
	{"renameat2 flags", testRenameFlags},
	{"directory rename", testDirRename},
}

func TestFiles(t *testing.T) {
	c, mnt := mountCluster(t)
	for _, tc := range fileCases {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Base(t.Name())
			tc.fn(t, c, mkdir(t, join(mnt, name)), "/"+name)
		})
	}
	c.WaitHealthy()
}

func mustWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// remoteRead reads path through a separate client, not the mount.
func remoteRead(t *testing.T, c *clustertest.Cluster, path string) []byte {
	t.Helper()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	if _, err := c.Client().Get(ctx, path, &buf, nil); err != nil {
		t.Fatalf("get %s through the client: %v", path, err)
	}
	return buf.Bytes()
}

func testExcl(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("second O_EXCL create: %v, want EEXIST", err)
	}
	if err := os.Mkdir(join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.OpenFile(join(dir, "d"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("O_EXCL create over a directory: %v, want EEXIST", err)
	}
}

func testAppend(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	p := join(dir, "log")
	mustWrite(t, p, []byte("start\n"))
	// Two descriptors append concurrently: no write may land on another.
	var wg sync.WaitGroup
	const n = 50
	for _, line := range []string{"aaaaaaaaaa\n", "bbbbbbbbbb\n"} {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := f.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		defer f.Close()
	}
	wg.Wait()
	got := mustRead(t, p)
	if want := 6 + 2*n*11; len(got) != want {
		t.Fatalf("size %d after appends, want %d", len(got), want)
	}
	if bytes.Count(got, []byte("aaaaaaaaaa\n")) != n || bytes.Count(got, []byte("bbbbbbbbbb\n")) != n {
		t.Fatalf("appends interleaved or lost:\n%s", got)
	}
	// A write at an explicit offset on an O_APPEND descriptor appends too.
	f, err := os.OpenFile(p, os.O_APPEND|os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := syscall.Pwrite(int(f.Fd()), []byte("end"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); !bytes.HasSuffix(got, []byte("end")) || !bytes.HasPrefix(got, []byte("start\n")) {
		t.Fatalf("pwrite on O_APPEND did not append: %q", got[len(got)-20:])
	}
	if got, want := remoteRead(t, c, remote+"/log"), mustRead(t, p); !bytes.Equal(got, want) {
		t.Fatalf("client reads %d bytes, mount %d", len(got), len(want))
	}
}

func testTrunc(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "f")
	mustWrite(t, p, bytes.Repeat([]byte("x"), 3<<20))
	f, err := os.OpenFile(p, os.O_TRUNC|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("size %d after O_TRUNC, want 0", st.Size())
	}
	f.Write([]byte("new"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); string(got) != "new" {
		t.Fatalf("read %q, want %q", got, "new")
	}
}

func testSharedHandles(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "f")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000) // 1.6 MB, over a chunk
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	// Not closed or synced: a second descriptor sees it all the same.
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if st, _ := r.Stat(); st.Size() != int64(len(data)) {
		t.Errorf("size %d through a second handle, want %d", st.Size(), len(data))
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("second handle read %d bytes, want %d (the first handle's)", len(got), len(data))
	}
}

func testUnlinkOpen(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	p := join(dir, "f")
	data := bytes.Repeat([]byte("u"), 2<<20)
	mustWrite(t, p, data)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A write not yet flushed: fstat answers from the mount's own view
	// of the file, which the unlink must not leave with a link count of 1.
	if _, err := f.WriteAt([]byte("u"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after unlink: %v, want ENOENT", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 {
		t.Errorf("fstat after unlink: nlink %d, %v; want 0", st.Nlink, err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after unlink: %d bytes, %v; want %d", len(got), err, len(data))
	}
	if _, err := f.WriteAt([]byte("still writable"), 0); err != nil {
		t.Fatalf("write after unlink: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The inode is gone once closed: the name can be reused.
	mustWrite(t, p, []byte("again"))
	if got := remoteRead(t, c, remote+"/f"); string(got) != "again" {
		t.Fatalf("recreated file reads %q", got)
	}
}

func testRenameOverOpen(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	old, tgt := join(dir, "old"), join(dir, "target")
	mustWrite(t, old, []byte("replacement"))
	mustWrite(t, tgt, []byte("original content"))
	f, err := os.Open(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Rename(old, tgt); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(f); err != nil || string(got) != "original content" {
		t.Fatalf("open replaced file reads %q, %v", got, err)
	}
	if got := mustRead(t, tgt); string(got) != "replacement" {
		t.Fatalf("new name reads %q", got)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old name after rename: %v", err)
	}
}

func testFsync(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	f, err := os.Create(join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("fsync"), 300000)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Still open: another client reads what was fsynced.
	if got := remoteRead(t, c, remote+"/f"); !bytes.Equal(got, data) {
		t.Fatalf("after fsync the client reads %d bytes, want %d", len(got), len(data))
	}
}

func testCloseDurable(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	data := bytes.Repeat([]byte("close"), 500000)
	mustWrite(t, join(dir, "f"), data)
	if got := remoteRead(t, c, remote+"/f"); !bytes.Equal(got, data) {
		t.Fatalf("after close the client reads %d bytes, want %d", len(got), len(data))
	}
}

func testFtruncate(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	f, err := os.Create(join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(bytes.Repeat([]byte("t"), 5000))
	if err := f.Truncate(100); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("end"), 200)
	if err := f.Truncate(150); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 150 {
		t.Fatalf("size %d, want 150", st.Size())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got := mustRead(t, join(dir, "f"))
	want := append(bytes.Repeat([]byte("t"), 100), make([]byte, 50)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

func testUtimens(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	p := join(dir, "f")
	mustWrite(t, p, []byte("x"))
	mtime := unix.NsecToTimespec(time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC).UnixNano())
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtime}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Stat(p, &st)
	if st.Mtim != mtime {
		t.Fatalf("mtime %v, want %v", st.Mtim, mtime)
	}
	before := time.Now().Add(-time.Second)
	now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, now, 0); err != nil {
		t.Fatal(err)
	}
	unix.Stat(p, &st)
	if got := time.Unix(st.Mtim.Unix()); got.Before(before) {
		t.Fatalf("mtime %v after UTIME_NOW, want about now", got)
	}
	// A write then futimens on the open descriptor: the time set last wins.
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("more data"))
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{mtime, mtime}, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Ask the manager, not the kernel's attribute cache.
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	a, err := c.Client().Resolve(ctx, remote+"/f")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(mtime.Unix()); !a.Mtime.Equal(want) {
		t.Fatalf("mtime %v after write+utimens+close, want %v", a.Mtime, want)
	}
}

func testEditorSave(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "doc.txt")
	mustWrite(t, p, []byte("version 1"))
	old := mustStat(t, p)
	tmp, err := os.CreateTemp(dir, ".doc.txt.swp")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Write([]byte("version 2"))
	if err := tmp.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync dir: %v", err)
	}
	d.Close()
	if got := mustRead(t, p); string(got) != "version 2" {
		t.Fatalf("read %q", got)
	}
	if mustStat(t, p).Ino == old.Ino {
		t.Fatalf("inode number unchanged by the rename-over")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d entries after save, want 1", len(entries))
	}
}

// testBlocks checks st_blksize, the preferred I/O size (the largest FUSE
// request, so that cp and stdio write in requests that big), and
// st_blocks (the size in whole 4 KiB pages, counted in 512-byte units, as
// du expects), for files committed and for one with writes in flight.
func testBlocks(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	wantBlksize := int64(fuse.DefaultOptions().MaxWrite)
	check := func(p string, size int64) {
		t.Helper()
		st := mustStat(t, p)
		wantBlocks := (size + 4095) / 4096 * 8
		if st.Size != size || st.Blksize != wantBlksize || st.Blocks != wantBlocks {
			t.Errorf("%s: size %d blksize %d blocks %d, want %d, %d, %d",
				filepath.Base(p), st.Size, st.Blksize, st.Blocks, size, wantBlksize, wantBlocks)
		}
	}
	for _, size := range []int64{0, 3, 4096, 4097, 3<<20 + 1} {
		p := join(dir, fmt.Sprint(size))
		mustWrite(t, p, bytes.Repeat([]byte{'x'}, int(size)))
		check(p, size)
	}
	p := join(dir, "open")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	check(p, 10000)
}

func mustStat(t *testing.T, p string) syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func testHugeSparse(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	p := join(dir, "huge")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off = 5 << 30
	if _, err := f.WriteAt([]byte("hello"), off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st := mustStat(t, p)
	if st.Size != off+5 {
		t.Fatalf("size %d, want %d", st.Size, off+5)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 5)
	if _, err := r.ReadAt(buf, off); err != nil || string(buf) != "hello" {
		t.Fatalf("read at 5 GiB: %q, %v", buf, err)
	}
	hole := make([]byte, 4096)
	if _, err := r.ReadAt(hole, 3<<30); err != nil || !bytes.Equal(hole, make([]byte, 4096)) {
		t.Fatalf("read in the hole: %v (non-zero: %v)", err, !bytes.Equal(hole, make([]byte, 4096)))
	}
	if n, err := r.ReadAt(buf, off+5); n != 0 || err != io.EOF {
		t.Fatalf("read at EOF: %d, %v", n, err)
	}
}

func testMmap(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "m")
	data := bytes.Repeat([]byte("m"), mmapSize)
	mustWrite(t, p, data)
	runHelperProcess(t, "mmap", p, nil)
	want := append([]byte(nil), data...)
	copy(want[mmapOff:], mmapWrite)
	if got := mustRead(t, p); !bytes.Equal(got, want) {
		t.Fatalf("after writes through a shared mapping the file differs (at %d: %q)", mmapOff, got[mmapOff:mmapOff+len(mmapWrite)])
	}
}

func testFifo(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "fifo")
	if err := syscall.Mkfifo(p, 0o640); err != nil {
		t.Fatal(err)
	}
	st := mustStat(t, p)
	if st.Mode&syscall.S_IFMT != syscall.S_IFIFO || st.Mode&0o777 != 0o640 {
		t.Fatalf("mode %o, want fifo 0640", st.Mode)
	}
}

func testStatfs(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Namelen != 255 || st.Blocks == 0 || st.Bfree > st.Blocks || st.Bsize == 0 {
		t.Fatalf("statfs: %+v", st)
	}
}

// testXattr: shoal stores no extended attributes. The mount answers
// ENOSYS, so the kernel stops asking and callers get EOPNOTSUPP, every
// time, as on a filesystem without xattr support.
func testXattr(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "f")
	mustWrite(t, p, []byte("x"))
	for i := range 2 { // the kernel answers the second round itself
		if _, err := unix.Getxattr(p, "user.foo", make([]byte, 10)); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("getxattr #%d: %v, want EOPNOTSUPP", i, err)
		}
		if _, err := unix.Getxattr(p, "security.capability", nil); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("getxattr security.capability #%d: %v, want EOPNOTSUPP", i, err)
		}
		if _, err := unix.Listxattr(p, make([]byte, 100)); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("listxattr #%d: %v; want EOPNOTSUPP", i, err)
		}
		if err := unix.Setxattr(p, "user.foo", []byte("v"), 0); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("setxattr #%d: %v, want EOPNOTSUPP", i, err)
		}
		if err := unix.Removexattr(p, "user.foo"); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("removexattr #%d: %v, want EOPNOTSUPP", i, err)
		}
	}
	// Writing still works (the kernel no longer asks for
	// security.capability first).
	mustWrite(t, p, []byte("y"))
}

func testInodeNumbers(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	p := join(dir, "f")
	mustWrite(t, p, []byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	a, err := c.Client().Resolve(ctx, remote+"/f")
	if err != nil {
		t.Fatal(err)
	}
	if st := mustStat(t, p); st.Ino != uint64(a.Ino) {
		t.Fatalf("st_ino %d, manager inode %d", st.Ino, a.Ino)
	}
}

func testLinkCount(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	p := join(dir, "f")
	mustWrite(t, p, []byte("x"))
	for i, name := range []string{"l1", "l2"} {
		if err := os.Link(p, join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if st := mustStat(t, p); st.Nlink != uint64(i+2) {
			t.Fatalf("nlink %d after %d links, want %d", st.Nlink, i+1, i+2)
		}
	}
	if a, b := mustStat(t, p), mustStat(t, join(dir, "l2")); a.Ino != b.Ino {
		t.Fatalf("hard links have inodes %d and %d", a.Ino, b.Ino)
	}
	os.Remove(p)
	if st := mustStat(t, join(dir, "l1")); st.Nlink != 2 {
		t.Fatalf("nlink %d after unlinking one of 3, want 2", st.Nlink)
	}
}

func testRenameFlags(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	a, b := join(dir, "a"), join(dir, "b")
	mustWrite(t, a, []byte("A"))
	mustWrite(t, b, []byte("B"))
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_NOREPLACE); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("RENAME_NOREPLACE onto an existing name: %v, want EEXIST", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		t.Fatalf("RENAME_EXCHANGE: %v", err)
	}
	if string(mustRead(t, a)) != "B" || string(mustRead(t, b)) != "A" {
		t.Fatalf("after RENAME_EXCHANGE a=%q b=%q", mustRead(t, a), mustRead(t, b))
	}
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, join(dir, "c"), unix.RENAME_NOREPLACE); err != nil {
		t.Fatalf("RENAME_NOREPLACE to a new name: %v", err)
	}
	if string(mustRead(t, join(dir, "c"))) != "B" {
		t.Fatalf("c reads %q", mustRead(t, join(dir, "c")))
	}
}

func testDirRename(t *testing.T, _ *clustertest.Cluster, dir, _ string) {
	if err := os.MkdirAll(join(dir, "a", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, join(dir, "a", "sub", "f"), []byte("deep"))
	if err := os.Mkdir(join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Over an empty directory: replaced atomically. (os.Rename refuses
	// any existing directory as the target by itself; rename(2) does not.)
	if err := syscall.Rename(join(dir, "a"), join(dir, "empty")); err != nil {
		t.Fatal(err)
	}
	if string(mustRead(t, join(dir, "empty", "sub", "f"))) != "deep" {
		t.Fatal("moved tree unreadable")
	}
	// Into its own subtree: EINVAL; over a non-empty directory: ENOTEMPTY.
	if err := syscall.Rename(join(dir, "empty"), join(dir, "empty", "sub", "x")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("rename into own subtree: %v, want EINVAL", err)
	}
	if err := os.Mkdir(join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rename(join(dir, "other"), join(dir, "empty")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rename over a non-empty directory: %v, want ENOTEMPTY", err)
	}
	if st := mustStat(t, join(dir, "empty")); st.Nlink != 3 {
		t.Errorf("directory with one subdirectory has nlink %d, want 3", st.Nlink)
	}
}

// testDeferredAttrs is what tar does with every file: write, then set
// times, owner and mode on the open descriptor, then close. The changes
// show at once through the descriptor on this mount, reach the manager
// with the data by the time the file is closed, and are all there
// afterwards.
func testDeferredAttrs(t *testing.T, c *clustertest.Cluster, dir, remote string) {
	p := join(dir, "f")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := []byte("tar writes, then sets times, owner and mode")
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), ts, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Chown(1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	check := func(what string, st *syscall.Stat_t) {
		t.Helper()
		if st.Mode&0o7777 != 0o600 || st.Uid != 1234 || st.Gid != 5678 || st.Size != int64(len(data)) ||
			unix.TimespecToNsec(unix.Timespec(st.Mtim)) != mtime.UnixNano() {
			t.Fatalf("%s: mode %o uid %d gid %d size %d mtime %v", what, st.Mode, st.Uid, st.Gid, st.Size,
				time.Unix(0, unix.TimespecToNsec(unix.Timespec(st.Mtim))).UTC())
		}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	check("fstat before close", &st)
	// (That they were deferred, not set at once, client's TestDeferAttr
	// shows by counting calls: here a commit may carry them before the
	// close.)
	ctx := context.Background()
	cl := c.Client()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := cl.Resolve(ctx, remote+"/f")
	if err != nil || a.Mode&0o7777 != 0o600 || a.UID != 1234 || a.GID != 5678 || a.Size != uint64(len(data)) || !a.Mtime.Equal(mtime) {
		t.Fatalf("the manager after close: %+v, %v", a, err)
	}
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	check("stat after close", &st)
}

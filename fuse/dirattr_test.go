package fuse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/fuse/fusetest"
	"github.com/shoalfs/shoal/internal/cluster/clustertest"
)

// cutProxy forwards TCP connections to a target until it is cut; then
// it drops every connection and refuses new ones, so a client behind it
// cannot reach the target.
type cutProxy struct {
	lis    net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn

	wg sync.WaitGroup // the accept loop and the copying goroutines
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{lis: lis, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return p.lis.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(c, u)
		go pipe(u, c)
	}
}

// restore lets connections through again.
func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// cutOff drops every connection and refuses new ones.
func (p *cutProxy) cutOff() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) close() {
	p.lis.Close()
	p.cutOff()
	p.wg.Wait()
}

// openDir opens dir for fstat (which sends GETATTR without looking the
// path up).
func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestDirAttrsFromReplies checks that after a change in a directory the
// kernel's GETATTR of it (which it sends because the change invalidated
// its cached attributes) is answered from the change's reply, without a
// manager call: the mount's only way to the manager is cut before the
// GETATTRs. The answers must be what the manager holds.
func TestDirAttrsFromReplies(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	proxy := newCutProxy(t, c.ManagerAddr())
	cfg := client.DefaultConfig()
	cfg.Manager = proxy.addr()
	cfg.RPCTimeout, cfg.OpTimeout = time.Second, 3*time.Second // a call that needs the manager fails fast once cut
	o := fuse.DefaultOptions()
	// Remembered attributes stay usable for the whole test, however
	// slowly it runs: what is tested is where the answer comes from.
	o.AttrTimeout = time.Hour
	mnt, _ := fusetest.MountConfig(t, cfg, o)

	// One directory per kind of change, each with an open descriptor;
	// every change is made before the cut.
	dirs := []string{"unlink", "create", "mkdir", "rmdir", "symlink", "link", "from", "to"}
	fds := map[string]int{}
	for _, d := range dirs {
		mkdir(t, join(mnt, d))
		mustWrite(t, join(mnt, d, "f"), []byte("x"))
		mkdir(t, join(mnt, d, "sub"))
		fds[d] = openDir(t, join(mnt, d))
	}
	changes := []struct {
		name string
		fn   func() error
	}{
		{"unlink", func() error { return unix.Unlinkat(fds["unlink"], "f", 0) }},
		{"create", func() error {
			fd, err := unix.Openat(fds["create"], "g", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}},
		{"mkdir", func() error { return unix.Mkdirat(fds["mkdir"], "sub2", 0o755) }},
		{"rmdir", func() error { return unix.Unlinkat(fds["rmdir"], "sub", unix.AT_REMOVEDIR) }},
		{"symlink", func() error { return unix.Symlinkat("f", fds["symlink"], "s") }},
		{"link", func() error { return unix.Linkat(fds["link"], "f", fds["link"], "f2", 0) }},
		{"rename", func() error { return unix.Renameat(fds["from"], "sub", fds["to"], "moved") }},
	}
	for _, ch := range changes {
		if err := ch.fn(); err != nil {
			t.Fatalf("%s: %v", ch.name, err)
		}
	}
	// The unlink was queued (see unlinker): until the manager has it,
	// the directory's times are this mount's guess. An fsync of the
	// directory waits for it.
	if err := unix.Fsync(fds["unlink"]); err != nil {
		t.Fatal(err)
	}

	proxy.cutOff()
	direct := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.WaitTimeout)
	defer cancel()
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Fstat(fds[d], &st); err != nil {
			t.Errorf("%s: fstat of the directory with the manager cut off: %v", d, err)
			continue
		}
		want, err := direct.GetAttr(ctx, client.Ino(st.Ino))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("mode %o nlink %d mtime %d ctime %d", st.Mode, st.Nlink, unix.TimespecToNsec(st.Mtim), unix.TimespecToNsec(st.Ctim)); got != fmt.Sprintf("mode %o nlink %d mtime %d ctime %d", want.Mode, want.Nlink, want.Mtime.UnixNano(), want.Ctime.UnixNano()) {
			t.Errorf("%s: fstat says %s; the manager has %+v", d, got, want)
		}
	}
	// The cut is real: a lookup of a name never seen needs the manager
	// (in the root: a directory this mount just made would answer it
	// itself, see newDir).
	var st unix.Stat_t
	if err := unix.Stat(join(mnt, "no-such-name"), &st); !errors.Is(err, unix.EIO) {
		t.Errorf("lookup with the manager cut off: %v, want EIO", err)
	}
}

// TestDirAttrsOtherMount checks that a change another mount makes to a
// directory is seen once the attribute timeout has passed, although this
// mount remembers the directory's attributes from its own change.
func TestDirAttrsOtherMount(t *testing.T) {
	fusetest.Require(t)
	c := clustertest.New(t, clustertest.Options{})
	o := fuse.DefaultOptions()
	a := fusetest.Mount(t, c.ManagerAddr(), o)
	b := fusetest.Mount(t, c.ManagerAddr(), o)

	dir := mkdir(t, join(a, "d"))
	mustWrite(t, join(dir, "f"), []byte("x"))
	mustWrite(t, join(dir, "g"), []byte("x"))
	fd := openDir(t, dir)
	if err := unix.Unlinkat(fd, "f", 0); err != nil { // A remembers d's attributes
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	// B changes d's mode and contents.
	if err := unix.Chmod(join(b, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unlink(join(b, "d", "g")); err != nil {
		t.Fatal(err)
	}
	// B queued the unlink (see unlinker); fsync of the directory waits
	// until the manager has it.
	if err := unix.Fsync(openDir(t, join(b, "d"))); err != nil {
		t.Fatal(err)
	}
	want, err := c.Client().GetAttr(context.Background(), client.Ino(st.Ino))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to see B's change of the directory", 3*o.AttrTimeout+10*time.Second, func() error {
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if st.Mode&0o7777 != 0o700 || unix.TimespecToNsec(st.Ctim) != want.Ctime.UnixNano() || unix.TimespecToNsec(st.Mtim) != want.Mtime.UnixNano() {
			return fmt.Errorf("A sees mode %o mtime %d ctime %d; the manager has %+v", st.Mode, unix.TimespecToNsec(st.Mtim), unix.TimespecToNsec(st.Ctim), want)
		}
		return nil
	})
	// A's own next change is made with what the manager has: the
	// permission check and the reply agree.
	mustWrite(t, join(dir, "h"), []byte("x"))
}

package fuse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv, when set in the environment, makes the test binary run the
// helper it names on its last argument instead of the tests. Helpers do
// what a test must not do in the process that serves the mount (touch
// mmapped pages) or cannot (run as another user).
const helperEnv = "SHOAL_FUSE_TEST_HELPER"

// The mmap helper's file and what it writes.
const (
	mmapSize  = 3 << 20 // over several 1 MiB chunks
	mmapOff   = 1<<20 - 3
	mmapWrite = "written through a shared mapping"
)

func runHelper(mode, arg string) int {
	var err error
	switch mode {
	case "mmap":
		err = helperMmap(arg)
	case "perms":
		err = helperPerms(arg, os.Stdout)
	default:
		err = fmt.Errorf("unknown helper %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runHelperProcess re-executes the test binary as helper mode on arg,
// as the user cred if it is not nil, and returns its output.
func runHelperProcess(t *testing.T, mode, arg string, cred *syscall.Credential) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		exe = copyExecutable(t, exe)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$", arg)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper %s %s: %v\n%s", mode, arg, err, stderr.String())
	}
	return out.String()
}

// copyExecutable copies the test binary where any user can run it: go
// test builds it in a directory only its owner can enter.
func copyExecutable(t *testing.T, exe string) string {
	t.Helper()
	dir := worldDir(t)
	dst := filepath.Join(dir, "helper")
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// worldDir is a temporary directory that every user can enter.
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shoal-fuse-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// helperMmap maps the file p shared, checks its content, writes through
// the mapping and syncs it.
func helperMmap(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, mmapSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	if !bytes.Equal(m, bytes.Repeat([]byte("m"), mmapSize)) {
		return errors.New("mmap read: content differs from the file's")
	}
	copy(m[mmapOff:], mmapWrite)
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return fmt.Errorf("msync: %w", err)
	}
	if err := syscall.Munmap(m); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	return f.Close()
}

// permOps are what the perms helper tries as an unprivileged user, in a
// tree that setupPermTree made as root. The results on the mount must
// be those on a local disk.
var permOps = []struct {
	name string
	fn   func(dir string) error
}{
	{"read a 0644 file", func(d string) error { _, err := os.ReadFile(d + "/ro644"); return err }},
	{"write a root 0644 file", func(d string) error { return writeFile(d+"/ro644", os.O_WRONLY) }},
	{"read a root 0600 file", func(d string) error { _, err := os.ReadFile(d + "/secret600"); return err }},
	{"write a 0666 file", func(d string) error { return writeFile(d+"/rw666", os.O_WRONLY) }},
	{"truncate a 0666 file", func(d string) error { return os.Truncate(d+"/rw666", 2) }},
	{"create in a root 0755 dir", func(d string) error { return writeFile(d+"/closed755/new", os.O_CREATE|os.O_WRONLY) }},
	{"mkdir in a root 0755 dir", func(d string) error { return os.Mkdir(d+"/closed755/newdir", 0o755) }},
	{"symlink in a root 0755 dir", func(d string) error { return os.Symlink("x", d+"/closed755/l") }},
	{"list a root 0755 dir", func(d string) error { _, err := os.ReadDir(d + "/closed755"); return err }},
	{"create in a 0777 dir", func(d string) error { return writeFile(d+"/open777/mine", os.O_CREATE|os.O_WRONLY) }},
	{"own the new file", func(d string) error {
		var st syscall.Stat_t
		if err := syscall.Stat(d+"/open777/mine", &st); err != nil {
			return err
		}
		return fmt.Errorf("owner %d:%d", st.Uid, st.Gid)
	}},
	{"chmod own file", func(d string) error { return os.Chmod(d+"/open777/mine", 0o600) }},
	{"chown own file to root", func(d string) error { return os.Chown(d+"/open777/mine", 0, 0) }},
	{"chmod a root file", func(d string) error { return os.Chmod(d+"/rw666", 0o777) }},
	{"set times of a root 0666 file", func(d string) error {
		return os.Chtimes(d+"/rw666", time.Unix(1, 0), time.Unix(1, 0))
	}},
	{"touch a root 0666 file", func(d string) error {
		return unix.UtimesNanoAt(unix.AT_FDCWD, d+"/rw666", nil, 0)
	}},
	{"rename out of a 0777 dir into a 0755 one", func(d string) error { return os.Rename(d+"/open777/mine", d+"/closed755/x") }},
	{"unlink a root file in a 0777 dir", func(d string) error { return os.Remove(d + "/open777/rootfile") }},
	{"unlink a root file in a sticky dir", func(d string) error { return os.Remove(d + "/sticky/rootfile") }},
	{"rmdir a root dir in a 0755 dir", func(d string) error { return os.Remove(d + "/closed755/sub") }},
	{"enter a 0700 dir", func(d string) error { _, err := os.Stat(d + "/private700/f"); return err }},
	{"unlink own file", func(d string) error { return os.Remove(d + "/open777/mine") }},
}

func writeFile(p string, flag int) error {
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte("nobody")); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// setupPermTree makes, as root, the tree that permOps work in.
func setupPermTree(t *testing.T, dir string) {
	t.Helper()
	files := []struct {
		path string
		mode os.FileMode
	}{
		{"ro644", 0o644}, {"secret600", 0o600}, {"rw666", 0o666},
		{"closed755/", 0o755}, {"closed755/sub/", 0o755}, {"open777/", 0o777}, {"open777/rootfile", 0o644},
		{"sticky/", 0o777 | os.ModeSticky}, {"sticky/rootfile", 0o666},
		{"private700/", 0o700}, {"private700/f", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		var err error
		if strings.HasSuffix(f.path, "/") {
			err = os.Mkdir(p, 0o700)
		} else {
			err = os.WriteFile(p, []byte("root"), 0o600)
		}
		if err == nil {
			err = os.Chmod(p, f.mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func helperPerms(dir string, w io.Writer) error {
	for _, op := range permOps {
		err := op.fn(dir)
		var en syscall.Errno
		switch {
		case err == nil:
			fmt.Fprintf(w, "%s: ok\n", op.name)
		case errors.As(err, &en):
			fmt.Fprintf(w, "%s: %s\n", op.name, unix.ErrnoName(en))
		default:
			fmt.Fprintf(w, "%s: %v\n", op.name, err)
		}
	}
	return nil
}

package fuse

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// detach unmounts mountpoint lazily (MNT_DETACH): it leaves the
// namespace now and goes away when its last user lets go.
func detach(mountpoint string) error {
	err := syscall.Unmount(mountpoint, syscall.MNT_DETACH)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	out, ferr := exec.Command("fusermount3", "-u", "-z", mountpoint).CombinedOutput()
	if ferr != nil {
		return fmt.Errorf("fusermount3 -u -z: %v: %s", ferr, out)
	}
	return nil
}

// abortConnection aborts the FUSE connection of the mount with device
// number dev through the fusectl filesystem, mounting it on a temporary
// directory if it is not mounted at /sys/fs/fuse/connections. Only root
// can do this.
func abortConnection(dev uint64) error {
	if dev == 0 {
		return fmt.Errorf("unknown device number")
	}
	// fusectl names a connection by the kernel's device number; FUSE
	// mounts have major 0, so that is the minor number.
	name := fmt.Sprint(unix.Minor(dev))
	dir := "/sys/fs/fuse/connections"
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		tmp, err := os.MkdirTemp("", "shoal-fusectl-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		if err := syscall.Mount("fusectl", tmp, "fusectl", 0, ""); err != nil {
			return fmt.Errorf("mount fusectl: %w", err)
		}
		defer syscall.Unmount(tmp, syscall.MNT_DETACH)
		dir = tmp
	}
	return os.WriteFile(filepath.Join(dir, name, "abort"), []byte("1"), 0)
}

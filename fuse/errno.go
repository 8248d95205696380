package fuse

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
)

// errno is the one place where an error becomes the errno the kernel
// hands back to the caller. Nothing else in this package builds errnos
// from errors (gofs.ToErrno is not used: it compares with == and falls
// back to ENOSYS).
//
// The client returns errors that wrap a syscall.Errno, so most errors
// map to themselves. known is false for an error this table does not
// recognise; it becomes EIO and the caller logs it.
func errno(err error) (e syscall.Errno, known bool) {
	var en syscall.Errno
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, context.Canceled):
		// The op's ctx is cancelled when the kernel interrupts the
		// request (the caller got a signal).
		return syscall.EINTR, true
	case errors.As(err, &en) && en != 0:
		return en, true
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.EIO, true
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT, true
	case errors.Is(err, fs.ErrExist):
		return syscall.EEXIST, true
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES, true
	case errors.Is(err, fs.ErrInvalid):
		return syscall.EINVAL, true
	case errors.Is(err, fs.ErrClosed):
		return syscall.EBADF, true
	}
	return syscall.EIO, false
}

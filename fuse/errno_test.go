package fuse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

func TestErrno(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		want  syscall.Errno
		known bool
	}{
		{"nil", nil, 0, true},
		{"canceled", context.Canceled, syscall.EINTR, true},
		{"wrapped canceled", fmt.Errorf("client: lookup: %w", context.Canceled), syscall.EINTR, true},
		{"deadline", fmt.Errorf("rpc: %w", context.DeadlineExceeded), syscall.EIO, true},
		{"errno", syscall.ENOENT, syscall.ENOENT, true},
		{"wrapped errno", fmt.Errorf("client: lookup %q in 1: %w", "x", syscall.ENOTEMPTY), syscall.ENOTEMPTY, true},
		{"double wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", syscall.EXDEV)), syscall.EXDEV, true},
		{"joined", errors.Join(errors.New("x"), syscall.ENOSPC), syscall.ENOSPC, true},
		{"path error", &os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, syscall.EACCES, true},
		{"eio", fmt.Errorf("client: op timeout: %w", syscall.EIO), syscall.EIO, true},
		{"fs.ErrNotExist", fmt.Errorf("x: %w", fs.ErrNotExist), syscall.ENOENT, true},
		{"fs.ErrExist", fs.ErrExist, syscall.EEXIST, true},
		{"fs.ErrPermission", fs.ErrPermission, syscall.EACCES, true},
		{"fs.ErrInvalid", fs.ErrInvalid, syscall.EINVAL, true},
		{"fs.ErrClosed", fs.ErrClosed, syscall.EBADF, true},
		{"zero errno", fmt.Errorf("odd: %w", syscall.Errno(0)), syscall.EIO, false},
		{"unknown", errors.New("something broke"), syscall.EIO, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, known := errno(tc.err)
			if got != tc.want || known != tc.known {
				t.Errorf("errno(%v) = %v (known %v), want %v (known %v)", tc.err, got, known, tc.want, tc.known)
			}
		})
	}
}

package client

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalfs/shoal/internal/testlog"
	shoalpb "github.com/shoalfs/shoal/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestFromStatus(t *testing.T) {
	plain := errors.New("not a status")
	tests := []struct {
		name  string
		in    error
		errno syscall.Errno // 0: none expected
		is    []error
	}{
		{"not found", status.Error(codes.NotFound, "x"), syscall.ENOENT, []error{fs.ErrNotExist}},
		{"exists", status.Error(codes.AlreadyExists, "x"), syscall.EEXIST, []error{fs.ErrExist}},
		{"not empty", withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_EMPTY, "x"), syscall.ENOTEMPTY, nil},
		{"not dir", withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_NOT_DIR, "x"), syscall.ENOTDIR, nil},
		{"is dir", withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_IS_DIR, "x"), syscall.EISDIR, nil},
		{"loop", withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_LOOP, "x"), syscall.EINVAL, nil},
		{"too many links", withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_TOO_MANY_LINKS, "x"), syscall.EMLINK, nil},
		{"stale", withReason(codes.FailedPrecondition, shoalpb.ErrorDetail_STALE_VERSION, "x"), syscall.EIO, []error{ErrStaleVersion}},
		{"precondition, no detail", status.Error(codes.FailedPrecondition, "x"), syscall.EIO, nil},
		{"invalid", status.Error(codes.InvalidArgument, "x"), syscall.EINVAL, nil},
		{"invalid name", withReason(codes.InvalidArgument, shoalpb.ErrorDetail_INVALID_NAME, "x"), syscall.EINVAL, nil},
		{"name too long", withReason(codes.InvalidArgument, shoalpb.ErrorDetail_NAME_TOO_LONG, "x"), syscall.ENAMETOOLONG, nil},
		{"exhausted", status.Error(codes.ResourceExhausted, "x"), syscall.ENOSPC, nil},
		{"no space", withReason(codes.ResourceExhausted, shoalpb.ErrorDetail_NO_SPACE, "x"), syscall.ENOSPC, nil},
		{"permission", status.Error(codes.PermissionDenied, "x"), syscall.EACCES, []error{fs.ErrPermission}},
		{"unavailable", status.Error(codes.Unavailable, "x"), syscall.EIO, nil},
		{"deadline code", status.Error(codes.DeadlineExceeded, "x"), syscall.EIO, nil},
		{"data loss", status.Error(codes.DataLoss, "x"), syscall.EIO, nil},
		{"corrupt", withReason(codes.DataLoss, shoalpb.ErrorDetail_CORRUPT, "x"), syscall.EIO, []error{ErrChecksum}},
		{"internal", status.Error(codes.Internal, "x"), syscall.EIO, nil},
		{"unimplemented", status.Error(codes.Unimplemented, "x"), syscall.ENOSYS, nil},
		{"canceled code", status.Error(codes.Canceled, "x"), 0, []error{context.Canceled}},
		{"canceled value", context.Canceled, 0, []error{context.Canceled}},
		{"deadline value", context.DeadlineExceeded, 0, []error{context.DeadlineExceeded}},
		{"plain", plain, 0, []error{plain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fromStatus(tc.in)
			var errno syscall.Errno
			hasErrno := errors.As(got, &errno)
			if tc.errno != 0 && (!hasErrno || errno != tc.errno) {
				t.Errorf("fromStatus(%v) = %v; errno %v, want %v", tc.in, got, errno, tc.errno)
			}
			if tc.errno == 0 && hasErrno {
				t.Errorf("fromStatus(%v) = %v wraps errno %v, want none", tc.in, got, errno)
			}
			for _, target := range tc.is {
				if !errors.Is(got, target) {
					t.Errorf("fromStatus(%v) = %v, not errors.Is %v", tc.in, got, target)
				}
			}
			// Wrapped in an OpError, the errno is still found.
			oe := opErr("op", "/p", got)
			if tc.errno != 0 && !errors.Is(oe, tc.errno) {
				t.Errorf("OpError %v lost errno %v", oe, tc.errno)
			}
		})
	}
	if fromStatus(nil) != nil {
		t.Error("fromStatus(nil) != nil")
	}
}

func TestOpErrorMessage(t *testing.T) {
	err := opErr("lookup", entryPath(1, "a"), fromStatus(status.Error(codes.NotFound, "no a")))
	want := `client: lookup ino 1/"a": no such file or directory: no a`
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "lookup" {
		t.Errorf("errors.As OpError failed: %v", err)
	}
}

// A manager that is not there: operations retry, then fail with EIO
// naming the address, after about OpTimeout.
func TestUnreachableManager(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c, err := New(Config{Manager: addr, RPCTimeout: 100 * time.Millisecond, OpTimeout: 700 * time.Millisecond, Log: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.GetAttr(context.Background(), RootIno)
	took := time.Since(start)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want EIO", err)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("error %q does not say the manager at %s is unreachable", err, addr)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("failed after %v, want about the 700ms OpTimeout", took)
	}

	// A cancelled caller gets context.Canceled, not EIO.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetAttr(ctx, RootIno); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

package client

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	shoalpb "github.com/shoalfs/shoal/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinels for conditions callers may want to tell apart. Each error
// returned for them also wraps a syscall.Errno.
var (
	// ErrStaleVersion: a chunk commit lost a race with another writer
	// (wire reason STALE_VERSION). The writer handles it by writing again;
	// it reaches callers only when that keeps failing. Wraps EIO.
	ErrStaleVersion = errors.New("stale chunk version")
	// ErrClosed: the File or Client was closed. Wraps EBADF.
	ErrClosed = errors.New("client: closed")
	// ErrChecksum marks a replica whose data did not match its CRC32C.
	ErrChecksum = errors.New("checksum mismatch")
)

// OpError records the operation and the path (or "ino N") that failed.
// Err wraps a syscall.Errno, or is context.Canceled.
type OpError struct {
	Op   string
	Path string
	Err  error
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return "client: " + e.Op + ": " + e.Err.Error()
	}
	return "client: " + e.Op + " " + e.Path + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// opErr wraps err, if any, in an OpError.
func opErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Path: path, Err: err}
}

func inoPath(ino Ino) string { return fmt.Sprintf("ino %d", ino) }

func entryPath(parent Ino, name string) string { return fmt.Sprintf("ino %d/%q", parent, name) }

// wireError is a gRPC status turned into an errno (and maybe a sentinel).
type wireError struct {
	errno  syscall.Errno
	mark   error // a sentinel, or nil
	code   codes.Code
	reason shoalpb.ErrorDetail_Reason
	msg    string
}

func (e *wireError) Error() string {
	s := e.errno.Error()
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

func (e *wireError) Unwrap() []error {
	if e.mark != nil {
		return []error{e.errno, e.mark}
	}
	return []error{e.errno}
}

// reasonErrno maps the typed reasons that decide the errno on their own.
var reasonErrno = map[shoalpb.ErrorDetail_Reason]syscall.Errno{
	shoalpb.ErrorDetail_NOT_EMPTY:      syscall.ENOTEMPTY,
	shoalpb.ErrorDetail_NOT_DIR:        syscall.ENOTDIR,
	shoalpb.ErrorDetail_IS_DIR:         syscall.EISDIR,
	shoalpb.ErrorDetail_STALE_VERSION:  syscall.EIO,
	shoalpb.ErrorDetail_NO_SPACE:       syscall.ENOSPC,
	shoalpb.ErrorDetail_NAME_TOO_LONG:  syscall.ENAMETOOLONG,
	shoalpb.ErrorDetail_INVALID_NAME:   syscall.EINVAL,
	shoalpb.ErrorDetail_CORRUPT:        syscall.EIO,
	shoalpb.ErrorDetail_TOO_MANY_LINKS: syscall.EMLINK,
	shoalpb.ErrorDetail_LOOP:           syscall.EINVAL,
}

// codeErrno maps the codes when no reason says more.
var codeErrno = map[codes.Code]syscall.Errno{
	codes.NotFound:           syscall.ENOENT,
	codes.AlreadyExists:      syscall.EEXIST,
	codes.InvalidArgument:    syscall.EINVAL,
	codes.OutOfRange:         syscall.EINVAL,
	codes.ResourceExhausted:  syscall.ENOSPC,
	codes.PermissionDenied:   syscall.EACCES,
	codes.Unauthenticated:    syscall.EACCES,
	codes.Unimplemented:      syscall.ENOSYS,
	codes.Unavailable:        syscall.EIO,
	codes.DeadlineExceeded:   syscall.EIO,
	codes.DataLoss:           syscall.EIO,
	codes.FailedPrecondition: syscall.EIO,
	codes.Aborted:            syscall.EIO,
	codes.Internal:           syscall.EIO,
	codes.Unknown:            syscall.EIO,
}

// reasonOf returns the ErrorDetail reason attached to st, if any.
func reasonOf(st *status.Status) shoalpb.ErrorDetail_Reason {
	for _, d := range st.Details() {
		if ed, ok := d.(*shoalpb.ErrorDetail); ok {
			return ed.GetReason()
		}
	}
	return shoalpb.ErrorDetail_UNSPECIFIED
}

// fromStatus is the one place where a gRPC status becomes a client error:
// the result wraps a syscall.Errno chosen from the status code and the
// ErrorDetail reason (the reason wins where it says more), and
// ErrStaleVersion or ErrChecksum where they apply. context.Canceled and
// context.DeadlineExceeded, as values or as codes, come back as the
// context errors. nil stays nil; an error that is not a status is
// returned unchanged.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	code := st.Code()
	switch code {
	case codes.OK:
		return nil
	case codes.Canceled:
		return context.Canceled
	}
	we := &wireError{code: code, reason: reasonOf(st), msg: st.Message(), errno: syscall.EIO}
	if e, ok := reasonErrno[we.reason]; ok {
		we.errno = e
	} else if e, ok := codeErrno[code]; ok {
		we.errno = e
	}
	switch {
	case we.reason == shoalpb.ErrorDetail_STALE_VERSION:
		we.mark = ErrStaleVersion
	case we.reason == shoalpb.ErrorDetail_CORRUPT:
		we.mark = ErrChecksum
	}
	return we
}

// codeOf returns the gRPC code behind a client error, or codes.Unknown.
func codeOf(err error) codes.Code {
	var we *wireError
	if errors.As(err, &we) {
		return we.code
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

// eio and enospc build errors wrapping an errno with a message.
func eio(format string, args ...any) error {
	return fmt.Errorf("%w: %s", syscall.EIO, fmt.Sprintf(format, args...))
}

func enospc(format string, args ...any) error {
	return fmt.Errorf("%w: %s", syscall.ENOSPC, fmt.Sprintf(format, args...))
}

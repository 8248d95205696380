package metadata

import (
	"errors"
	"fmt"
	"io/fs"
)

// Domain errors. Every error the Manager returns for an expected failure
// wraps one of these (with fmt.Errorf and %w, adding the operation and its
// key); callers test with errors.Is. The gRPC service maps them to status
// codes in one place, toStatus in service.go.
//
// The namespace errors also satisfy errors.Is with the matching io/fs error
// where one exists (ErrNotFound is fs.ErrNotExist, ErrExists is
// fs.ErrExist, ErrInvalid is fs.ErrInvalid), for os-style callers.
var (
	ErrNotFound       = &domainError{msg: "not found", is: fs.ErrNotExist}
	ErrExists         = &domainError{msg: "already exists", is: fs.ErrExist}
	ErrNotEmpty       = &domainError{msg: "directory not empty"}
	ErrNotDir         = &domainError{msg: "not a directory"}
	ErrIsDir          = &domainError{msg: "is a directory"}
	ErrInvalid        = &domainError{msg: "invalid argument", is: fs.ErrInvalid}
	ErrNameTooLong    = &domainError{msg: "name too long"}
	ErrNoChunkServers = &domainError{msg: "not enough chunkservers with free space"}
	ErrStaleVersion   = &domainError{msg: "stale chunk version"}
	ErrLoop           = &domainError{msg: "directory would become its own descendant"}
	// ErrSafeMode is returned for a write that needs chunkservers while the
	// manager, just started, is still waiting for them to report: the
	// caller should retry (it maps to Unavailable).
	ErrSafeMode = &domainError{msg: "safe mode: waiting for chunkservers to report after a restart"}
	// ErrClosed is returned by every call made after Close.
	ErrClosed = &domainError{msg: "manager closed"}
)

// errBadName marks an invalid name (empty, ".", "..", '/' or NUL). It wraps
// ErrInvalid, so errors.Is(err, ErrInvalid) holds; the service uses the
// mark to attach the INVALID_NAME detail.
var errBadName = fmt.Errorf("bad name: %w", ErrInvalid)

type domainError struct {
	msg string
	is  error // an io/fs error this one also matches, or nil
}

func (e *domainError) Error() string { return e.msg }

func (e *domainError) Is(target error) bool { return e.is != nil && target == e.is }

// notFound wraps ErrNotFound with an operation and key.
func notFound(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
}

// isNotFound reports whether err is ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

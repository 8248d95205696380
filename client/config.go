package client

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
)

// ErrInvalidConfig marks the errors returned by Config.Validate.
var ErrInvalidConfig = errors.New("client: invalid config")

// Defaults for the Config fields left zero.
const (
	DefaultRPCTimeout  = 10 * time.Second
	DefaultOpTimeout   = 30 * time.Second
	DefaultWriteBuffer = 256 << 20
	DefaultReadAhead   = 8 << 20
	DefaultInlineMax   = 16 << 10
)

// MaxInline is the most bytes a file may keep inline (the manager's
// limit, metadata.MaxInline).
const MaxInline = 64 << 10

// minWriteBuffer is the smallest write budget accepted: one data message.
const minWriteBuffer = 1 << 20

// DefaultConfig returns a Config with every field but Manager and Log set
// to its default.
func DefaultConfig() Config {
	return Config{
		RPCTimeout:  DefaultRPCTimeout,
		OpTimeout:   DefaultOpTimeout,
		WriteBuffer: DefaultWriteBuffer,
		ReadAhead:   DefaultReadAhead,
		InlineMax:   DefaultInlineMax,
		LocalReads:  true,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig, so that
// Config{Manager: addr} is usable as it stands.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.RPCTimeout == 0 {
		c.RPCTimeout = d.RPCTimeout
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = d.OpTimeout
	}
	if c.WriteBuffer == 0 {
		c.WriteBuffer = d.WriteBuffer
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = d.ReadAhead
	}
	if c.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		c.Log = logrus.NewEntry(l)
	}
	return c
}

// Validate reports the first bad field. Zero durations and sizes are
// accepted: New replaces them with their defaults.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.Manager == "" {
		return bad("Manager is empty; want the manager's host:port")
	}
	host, port, err := net.SplitHostPort(c.Manager)
	if err != nil {
		return bad("Manager %q is not host:port: %v", c.Manager, err)
	}
	if host == "" {
		return bad("Manager %q has no host", c.Manager)
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return bad("Manager %q: %q is neither an IP address nor a host name", c.Manager, host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("Manager %q: port %q is not a number in 1..65535", c.Manager, port)
	}
	if c.RPCTimeout < 0 {
		return bad("RPCTimeout %v is negative", c.RPCTimeout)
	}
	if c.OpTimeout < 0 {
		return bad("OpTimeout %v is negative", c.OpTimeout)
	}
	d := c.withDefaults()
	if d.OpTimeout < d.RPCTimeout {
		return bad("OpTimeout %v is shorter than RPCTimeout %v", d.OpTimeout, d.RPCTimeout)
	}
	if c.WriteBuffer < 0 || (c.WriteBuffer > 0 && c.WriteBuffer < minWriteBuffer) {
		return bad("WriteBuffer %d is below the minimum %d bytes", c.WriteBuffer, minWriteBuffer)
	}
	if c.ReadAhead < 0 {
		return bad("ReadAhead %d is negative", c.ReadAhead)
	}
	if c.InlineMax < 0 || c.InlineMax > MaxInline {
		return bad("InlineMax %d is outside 0..%d", c.InlineMax, MaxInline)
	}
	return nil
}

// validHostname reports whether h is made of the characters of DNS names.
func validHostname(h string) bool {
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return h != ""
}

package metadata

// Value encoding for every record the manager stores: a format byte, then
// the fields in order as varints and length-prefixed strings. Compact
// (an inode is ~30 bytes), no reflection, and independent of the wire
// protocol. A new field is appended at the end; decoders accept a record
// that ends early and leave the missing fields zero, so old records stay
// readable. A different format byte is a hard error.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const valueFormat byte = 1

var errBadValue = errors.New("metadata: malformed value")

// layoutEntry is a file's chunk at one index (key l|ino|index).
type layoutEntry struct {
	Chunk   ChunkID
	Version uint64
	Length  uint64
	Summary uint32
}

// chunkRecord is a chunk's committed state (key c|id). Ino and Index say
// which file and chunk index it belongs to.
type chunkRecord struct {
	Version uint64
	Wanted  uint32
	Length  uint64
	Summary uint32
	Ino     Ino
	Index   uint64
}

// nodeRecord is a chunkserver's persisted identity (key n|id).
type nodeRecord struct {
	Addr     string
	Rack     string
	Capacity uint64
	Draining bool
}

// dirent is a directory entry's value: the child and its type bits.
type dirent struct {
	Ino  Ino
	Mode uint32
}

// dirStamp is a directory's latest mtime/ctime (key m|ino).
type dirStamp struct {
	Mtime, Ctime int64
}

type encoder []byte

func newEncoder(n int) encoder { return append(make(encoder, 0, n+1), valueFormat) }

func (e encoder) u(v uint64) encoder { return binary.AppendUvarint(e, v) }
func (e encoder) i(v int64) encoder  { return binary.AppendVarint(e, v) }
func (e encoder) s(v string) encoder { return append(e.u(uint64(len(v))), v...) }
func (e encoder) b(v bool) encoder {
	if v {
		return e.u(1)
	}
	return e.u(0)
}

type decoder struct {
	b   []byte
	err error
}

func newDecoder(b []byte, what string) *decoder {
	d := &decoder{b: b}
	switch {
	case len(b) == 0:
		d.err = fmt.Errorf("%w: empty %s", errBadValue, what)
	case b[0] != valueFormat:
		d.err = fmt.Errorf("%w: %s has format %d, want %d", errBadValue, what, b[0], valueFormat)
	default:
		d.b = b[1:]
	}
	return d
}

func (d *decoder) u() uint64 {
	if d.err != nil || len(d.b) == 0 {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad uvarint", errBadValue)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32() uint32 {
	v := d.u()
	if v > 1<<32-1 && d.err == nil {
		d.err = fmt.Errorf("%w: %d overflows uint32", errBadValue, v)
	}
	return uint32(v)
}

func (d *decoder) i() int64 {
	if d.err != nil || len(d.b) == 0 {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", errBadValue)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) s() string {
	n := d.u()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: string of %d bytes, %d left", errBadValue, n, len(d.b))
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) bool() bool {
	v := d.u()
	if v > 1 && d.err == nil {
		d.err = fmt.Errorf("%w: bool %d", errBadValue, v)
	}
	return v == 1
}

// done reports a decoding error or trailing bytes (written by a newer
// version with more fields: accepted).
func (d *decoder) done() error { return d.err }

// encodeInode encodes a's attributes; a.Ino is the key, not the value.
func encodeInode(a Attr) []byte {
	return newEncoder(32 + len(a.Target)).
		u(uint64(a.Mode)).u(uint64(a.Nlink)).u(uint64(a.UID)).u(uint64(a.GID)).
		u(a.Size).i(a.Atime).i(a.Mtime).i(a.Ctime).s(a.Target).
		u(a.ChunkSize).u(uint64(a.Rdev)).u(uint64(a.Parent))
}

func decodeInode(ino Ino, b []byte) (Attr, error) {
	d := newDecoder(b, "inode")
	a := Attr{Ino: ino}
	a.Mode, a.Nlink, a.UID, a.GID = d.u32(), d.u32(), d.u32(), d.u32()
	a.Size, a.Atime, a.Mtime, a.Ctime = d.u(), d.i(), d.i(), d.i()
	a.Target = d.s()
	a.ChunkSize, a.Rdev, a.Parent = d.u(), d.u32(), Ino(d.u())
	return a, d.done()
}

func encodeDirent(e dirent) []byte {
	return newEncoder(8).u(uint64(e.Ino)).u(uint64(e.Mode))
}

func decodeDirent(b []byte) (dirent, error) {
	d := newDecoder(b, "dirent")
	e := dirent{Ino: Ino(d.u()), Mode: d.u32()}
	return e, d.done()
}

func encodeLayout(l layoutEntry) []byte {
	return newEncoder(20).u(uint64(l.Chunk)).u(l.Version).u(l.Length).u(uint64(l.Summary))
}

func decodeLayout(b []byte) (layoutEntry, error) {
	d := newDecoder(b, "layout")
	l := layoutEntry{Chunk: ChunkID(d.u()), Version: d.u(), Length: d.u(), Summary: d.u32()}
	return l, d.done()
}

func encodeChunk(c chunkRecord) []byte {
	return newEncoder(30).u(c.Version).u(uint64(c.Wanted)).u(c.Length).u(uint64(c.Summary)).
		u(uint64(c.Ino)).u(c.Index)
}

func decodeChunk(b []byte) (chunkRecord, error) {
	d := newDecoder(b, "chunk")
	c := chunkRecord{Version: d.u(), Wanted: d.u32(), Length: d.u(), Summary: d.u32(), Ino: Ino(d.u()), Index: d.u()}
	return c, d.done()
}

func encodeNode(n nodeRecord) []byte {
	return newEncoder(16 + len(n.Addr) + len(n.Rack)).s(n.Addr).s(n.Rack).u(n.Capacity).b(n.Draining)
}

func decodeNode(b []byte) (nodeRecord, error) {
	d := newDecoder(b, "node")
	n := nodeRecord{Addr: d.s(), Rack: d.s(), Capacity: d.u(), Draining: d.bool()}
	return n, d.done()
}

func encodeStamp(s dirStamp) []byte { return newEncoder(16).i(s.Mtime).i(s.Ctime) }

func decodeStamp(b []byte) (dirStamp, error) {
	d := newDecoder(b, "dir stamp")
	s := dirStamp{Mtime: d.i(), Ctime: d.i()}
	return s, d.done()
}

package metadata

// The Badger key space, in one place. Every key is a one-byte prefix, a '|'
// (so a key dump reads well), and big-endian fixed-width integers, so a
// prefix scan returns entries in numeric order (directory entries in byte
// order of their names, layouts in chunk-index order).
//
//	i|ino               inode record (attrs)             -> encodeInode
//	d|parent|name       directory entry                  -> encodeDirent
//	l|ino|index         file layout entry                -> encodeLayout
//	b|ino               chunk 0 kept inline (small file) -> its bytes
//	c|chunk             chunk record                     -> encodeChunk
//	n|node id           chunkserver identity             -> encodeNode
//	o|ino               inode kept open after its last link (empty value)
//	m|ino               directory mtime/ctime stamp       -> encodeStamp
//	x|name              manager metadata: sequences, schema version
//
// A directory's mtime/ctime live in its m| stamp when one exists, so that
// creating files in a directory writes the stamp blindly instead of
// reading and rewriting the directory's inode: concurrent creates in one
// directory then do not conflict in Badger (see namespace.go).

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key prefixes.
const (
	prefixInode   byte = 'i'
	prefixDirent  byte = 'd'
	prefixLayout  byte = 'l'
	prefixInline  byte = 'b'
	prefixChunk   byte = 'c'
	prefixNode    byte = 'n'
	prefixOrphan  byte = 'o'
	prefixDirTime byte = 'm'
	prefixMeta    byte = 'x'

	keySep byte = '|'
)

// Metadata keys.
var (
	keyInoSeq   = metaKey("seq/ino")
	keyChunkSeq = metaKey("seq/chunk")
	keySchema   = metaKey("schema")
)

// schemaVersion is stored at keySchema; Open refuses another.
const schemaVersion = 1

var errBadKey = errors.New("metadata: malformed key")

func keyPrefix(p byte, extra int) []byte {
	k := make([]byte, 2, 2+extra)
	k[0], k[1] = p, keySep
	return k
}

func inoPrefixedKey(p byte, ino Ino) []byte {
	return binary.BigEndian.AppendUint64(keyPrefix(p, 8), uint64(ino))
}

func inodeKey(ino Ino) []byte { return inoPrefixedKey(prefixInode, ino) }

func orphanKey(ino Ino) []byte { return inoPrefixedKey(prefixOrphan, ino) }

func dirTimeKey(ino Ino) []byte { return inoPrefixedKey(prefixDirTime, ino) }

func inlineKey(ino Ino) []byte { return inoPrefixedKey(prefixInline, ino) }

func direntPrefix(parent Ino) []byte { return inoPrefixedKey(prefixDirent, parent) }

func direntKey(parent Ino, name string) []byte {
	k := binary.BigEndian.AppendUint64(keyPrefix(prefixDirent, 8+len(name)), uint64(parent))
	return append(k, name...)
}

func layoutPrefix(ino Ino) []byte { return inoPrefixedKey(prefixLayout, ino) }

func layoutKey(ino Ino, index uint64) []byte {
	k := binary.BigEndian.AppendUint64(keyPrefix(prefixLayout, 16), uint64(ino))
	return binary.BigEndian.AppendUint64(k, index)
}

func chunkKey(id ChunkID) []byte {
	return binary.BigEndian.AppendUint64(keyPrefix(prefixChunk, 8), uint64(id))
}

func nodeKey(id string) []byte { return append(keyPrefix(prefixNode, len(id)), id...) }

func metaKey(name string) []byte { return append(keyPrefix(prefixMeta, len(name)), name...) }

// allPrefix returns the prefix of every key of one kind.
func allPrefix(p byte) []byte { return keyPrefix(p, 0) }

// key is a decoded key: Kind is its prefix byte and the other fields those
// the kind has.
type key struct {
	Kind  byte
	Ino   Ino // inode, dirent parent, layout, orphan, dirtime
	Index uint64
	Chunk ChunkID
	Name  string // dirent name, node id, meta name
}

// encode is the inverse of decodeKey.
func (k key) encode() []byte {
	switch k.Kind {
	case prefixInode:
		return inodeKey(k.Ino)
	case prefixOrphan:
		return orphanKey(k.Ino)
	case prefixDirTime:
		return dirTimeKey(k.Ino)
	case prefixInline:
		return inlineKey(k.Ino)
	case prefixDirent:
		return direntKey(k.Ino, k.Name)
	case prefixLayout:
		return layoutKey(k.Ino, k.Index)
	case prefixChunk:
		return chunkKey(k.Chunk)
	case prefixNode:
		return nodeKey(k.Name)
	case prefixMeta:
		return metaKey(k.Name)
	}
	return nil
}

// decodeKey parses any manager key.
func decodeKey(b []byte) (key, error) {
	if len(b) < 2 || b[1] != keySep {
		return key{}, fmt.Errorf("%w: %q", errBadKey, b)
	}
	k := key{Kind: b[0]}
	rest := b[2:]
	fixed := func(n int) error {
		if len(rest) != n {
			return fmt.Errorf("%w: %q: want %d bytes after the prefix, have %d", errBadKey, b, n, len(rest))
		}
		return nil
	}
	switch k.Kind {
	case prefixInode, prefixOrphan, prefixDirTime, prefixInline:
		if err := fixed(8); err != nil {
			return key{}, err
		}
		k.Ino = Ino(binary.BigEndian.Uint64(rest))
	case prefixDirent:
		if len(rest) < 8 {
			return key{}, fmt.Errorf("%w: %q: short dirent key", errBadKey, b)
		}
		k.Ino = Ino(binary.BigEndian.Uint64(rest))
		k.Name = string(rest[8:])
	case prefixLayout:
		if err := fixed(16); err != nil {
			return key{}, err
		}
		k.Ino = Ino(binary.BigEndian.Uint64(rest))
		k.Index = binary.BigEndian.Uint64(rest[8:])
	case prefixChunk:
		if err := fixed(8); err != nil {
			return key{}, err
		}
		k.Chunk = ChunkID(binary.BigEndian.Uint64(rest))
	case prefixNode, prefixMeta:
		k.Name = string(rest)
	default:
		return key{}, fmt.Errorf("%w: %q: unknown prefix", errBadKey, b)
	}
	return k, nil
}

// Typed decoders for scans.

func decodeInoKey(p byte, b []byte) (Ino, error) {
	k, err := decodeKey(b)
	if err != nil {
		return 0, err
	}
	if k.Kind != p {
		return 0, fmt.Errorf("%w: %q: want prefix %c", errBadKey, b, p)
	}
	return k.Ino, nil
}

func decodeDirentKey(b []byte) (parent Ino, name string, err error) {
	k, err := decodeKey(b)
	if err == nil && k.Kind != prefixDirent {
		err = fmt.Errorf("%w: %q: not a dirent key", errBadKey, b)
	}
	return k.Ino, k.Name, err
}

func decodeLayoutKey(b []byte) (ino Ino, index uint64, err error) {
	k, err := decodeKey(b)
	if err == nil && k.Kind != prefixLayout {
		err = fmt.Errorf("%w: %q: not a layout key", errBadKey, b)
	}
	return k.Ino, k.Index, err
}

func decodeChunkKey(b []byte) (ChunkID, error) {
	k, err := decodeKey(b)
	if err == nil && k.Kind != prefixChunk {
		err = fmt.Errorf("%w: %q: not a chunk key", errBadKey, b)
	}
	return k.Chunk, err
}

func decodeNodeKey(b []byte) (string, error) {
	k, err := decodeKey(b)
	if err == nil && k.Kind != prefixNode {
		err = fmt.Errorf("%w: %q: not a node key", errBadKey, b)
	}
	return k.Name, err
}

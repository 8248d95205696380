package transport

import (
	"encoding/binary"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec wrapped here
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// codec is gRPC's proto codec, except that a WriteChunkRequest's data is
// sent from where it is, not copied (marshalWriteChunkRequest), and the
// two messages that carry chunk data, a ReadChunkResponse to readers and
// a WriteChunkRequest to chunkservers, are decoded with one copy of
// their payload instead of two or three. gRPC hands a received message over
// as a list of HTTP/2 frame buffers (16 KiB each); its proto codec first
// copies them into one buffer, then proto.Unmarshal copies the data
// field out of that, into a buffer it has zeroed. Here the data field is
// copied once, straight from the frames.
type codec struct {
	proto encoding.CodecV2
}

func newCodec() encoding.CodecV2 {
	return codec{proto: encoding.GetCodecV2("proto")}
}

func (c codec) Name() string { return c.proto.Name() }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *shoalpb.WriteChunkRequest:
		if len(m.GetData()) >= zeroCopyMin {
			return marshalWriteChunkRequest(m)
		}
	case *WriteChunkMsg:
		if m.Buf == nil {
			return c.Marshal(m.Req)
		}
		head, err := marshalWriteChunkHead(m.Req)
		if err != nil {
			return nil, err
		}
		m.Buf.Ref() // gRPC's, freed once the message is written
		return mem.BufferSlice{mem.SliceBuffer(head), m.Buf}, nil
	}
	return c.proto.Marshal(v)
}

// WriteChunkMsg is a WriteChunkRequest whose data is held in a pooled,
// reference-counted buffer: what a chunkserver receives (RecvMsg) and
// forwards down the chain (SendMsg) without allocating for each message.
// Before it, every MiB received was a fresh MiB of heap for the garbage
// collector. Req.Data is Buf's bytes. Each holder of a reference calls
// Free once: the receiver when it is done with the data, and a forwarder,
// which takes its own with Ref, once SendMsg returns; gRPC takes one
// more in Marshal for as long as it queues the message.
type WriteChunkMsg struct {
	Req *shoalpb.WriteChunkRequest
	Buf mem.Buffer // nil when Req.Data is not pooled
}

// Ref takes a reference for another holder.
func (m *WriteChunkMsg) Ref() {
	if m.Buf != nil {
		m.Buf.Ref()
	}
}

// Free drops the caller's reference; the last one returns the buffer.
func (m *WriteChunkMsg) Free() {
	if m.Buf != nil {
		m.Buf.Free()
	}
}

// zeroCopyMin is the smallest payload marshalWriteChunkRequest leaves
// in place; below it a copy costs less than a second buffer.
const zeroCopyMin = 16 << 10

// marshalWriteChunkRequest encodes m without copying its data: the other
// fields, then the data field's tag and length, then a buffer that is
// m.Data itself (a decoder takes fields in any order). The sender must
// not change m.Data until the message is on the wire, which gRPC may do
// after Send returns: the client's chunk writer keeps a generation's
// bytes, unchanged, until the chunk is committed, and a chunkserver
// forwards the messages it received and drops them.
func marshalWriteChunkRequest(m *shoalpb.WriteChunkRequest) (mem.BufferSlice, error) {
	head, err := marshalWriteChunkHead(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(m.GetData())}, nil
}

// marshalWriteChunkHead encodes m up to its data: the other fields, then
// the data field's tag and length.
func marshalWriteChunkHead(m *shoalpb.WriteChunkRequest) ([]byte, error) {
	head, err := proto.Marshal(&shoalpb.WriteChunkRequest{Header: m.GetHeader(), Offset: m.GetOffset()})
	if err != nil {
		return nil, err
	}
	head = protowire.AppendTag(head, 3, protowire.BytesType)
	return protowire.AppendVarint(head, uint64(len(m.GetData()))), nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *shoalpb.ReadChunkResponse:
		if decodeReadChunkResponse(data, m) {
			return nil
		}
	case *shoalpb.WriteChunkRequest:
		if decodeWriteChunkRequest(data, m, heapAlloc) {
			return nil
		}
	case *WriteChunkMsg:
		if unmarshalWriteChunkMsg(data, m) {
			return nil
		}
		m.Req, m.Buf = new(shoalpb.WriteChunkRequest), nil
		return c.proto.Unmarshal(data, m.Req)
	}
	return c.proto.Unmarshal(data, v)
}

func heapAlloc(n int) []byte { return make([]byte, n) }

// unmarshalWriteChunkMsg decodes data into m with the payload in a buffer
// of gRPC's default pool (which has a 1 MiB tier: MaxDataMessage).
func unmarshalWriteChunkMsg(data mem.BufferSlice, m *WriteChunkMsg) bool {
	pool := mem.DefaultBufferPool()
	var bp *[]byte
	req := new(shoalpb.WriteChunkRequest)
	ok := decodeWriteChunkRequest(data, req, func(n int) []byte {
		bp = pool.Get(n)
		*bp = (*bp)[:n]
		return *bp
	})
	if !ok {
		if bp != nil {
			pool.Put(bp)
		}
		return false
	}
	m.Req, m.Buf = req, nil
	if bp != nil {
		m.Buf = mem.NewBuffer(bp, pool)
	}
	return true
}

// decodeWriteChunkRequest decodes data into m, copying the payload once,
// straight from the frames into a buffer from alloc, when each of its
// fields (header, offset, data) appears at most once, in any order. It
// reports false, leaving m to the general decoder, for anything else.
func decodeWriteChunkRequest(data mem.BufferSlice, m *shoalpb.WriteChunkRequest, alloc func(int) []byte) bool {
	r := sliceReader{bufs: data}
	var header *shoalpb.WriteChunkHeader
	var offset uint64
	var payload []byte
	var seen [4]bool
	for r.len() > 0 {
		tag, ok := r.varint()
		if !ok {
			return false
		}
		num, typ := protowire.DecodeTag(tag)
		if num < 1 || num > 3 || seen[num] {
			return false
		}
		seen[num] = true
		switch {
		case num == 2 && typ == protowire.VarintType:
			if offset, ok = r.varint(); !ok {
				return false
			}
		case num != 2 && typ == protowire.BytesType:
			size, ok := r.varint()
			if !ok || size > uint64(r.len()) {
				return false
			}
			if num == 3 {
				payload = alloc(int(size))
				r.read(payload)
				continue
			}
			b := make([]byte, size)
			r.read(b)
			header = new(shoalpb.WriteChunkHeader)
			if proto.Unmarshal(b, header) != nil {
				return false
			}
		default:
			return false
		}
	}
	m.Reset()
	m.Header, m.Offset, m.Data = header, offset, payload
	return true
}

// decodeReadChunkResponse decodes data into m when it has the layout
// proto.Marshal gives it: the offset (field 1), then the data (field 2),
// then the checksums (field 3, packed) and the varints of fields 4 to 6,
// each at most once. It reports
// false, leaving m to the general decoder, for anything else.
func decodeReadChunkResponse(data mem.BufferSlice, m *shoalpb.ReadChunkResponse) bool {
	r := sliceReader{bufs: data}
	// The head: the offset and the data field's tag and length, at most
	// 1 + 10 + 1 + 10 bytes.
	var head [22]byte
	n := r.peek(head[:])
	b := head[:n]
	var offset uint64
	if num, typ, l := protowire.ConsumeTag(b); l > 0 && num == 1 && typ == protowire.VarintType {
		v, vl := protowire.ConsumeVarint(b[l:])
		if vl < 0 {
			return false
		}
		offset = v
		b = b[l+vl:]
	}
	var payload []byte
	if num, typ, l := protowire.ConsumeTag(b); l > 0 && num == 2 && typ == protowire.BytesType {
		size, vl := protowire.ConsumeVarint(b[l:])
		if vl < 0 || size > uint64(r.len()) {
			return false
		}
		r.skip(n - len(b) + l + vl)
		payload = make([]byte, size)
		if r.read(payload) != int(size) {
			return false
		}
	} else {
		r.skip(n - len(b))
	}
	// The tail, small: the packed checksums, then the head and tail
	// checksums of an exact read (fields 4 to 6), in field order.
	rest := make([]byte, r.len())
	r.read(rest)
	var crcs []uint32
	var last protowire.Number = 2
	var extra [3]uint32 // fields 4, 5, 6
	for len(rest) > 0 {
		num, typ, l := protowire.ConsumeTag(rest)
		if l < 0 || num <= last {
			return false
		}
		last = num
		if num >= 4 && num <= 6 && typ == protowire.VarintType {
			v, vl := protowire.ConsumeVarint(rest[l:])
			if vl < 0 || v > 0xffffffff {
				return false
			}
			extra[num-4] = uint32(v)
			rest = rest[l+vl:]
			continue
		}
		if num != 3 || typ != protowire.BytesType {
			return false
		}
		packed, pl := protowire.ConsumeBytes(rest[l:])
		if pl < 0 {
			return false
		}
		crcs = make([]uint32, 0, len(packed)/4)
		for len(packed) > 0 {
			v, vl := protowire.ConsumeVarint(packed)
			if vl < 0 || v > 0xffffffff {
				return false
			}
			crcs = append(crcs, uint32(v))
			packed = packed[vl:]
		}
		rest = rest[l+pl:]
	}
	m.Reset()
	m.Offset, m.Data, m.Crcs = offset, payload, crcs
	m.HeadCrc, m.TailCrc, m.TailLength = extra[0], extra[1], extra[2]
	return true
}

// sliceReader reads a mem.BufferSlice front to back without joining it.
type sliceReader struct {
	bufs mem.BufferSlice
	i    int // current buffer
	off  int // in it
}

func (r *sliceReader) len() int {
	n := 0
	for j := r.i; j < len(r.bufs); j++ {
		n += r.bufs[j].Len()
	}
	return n - r.off
}

// peek copies up to len(p) bytes without consuming them.
func (r *sliceReader) peek(p []byte) int {
	c := *r
	return c.read(p)
}

func (r *sliceReader) read(p []byte) int {
	n := 0
	for n < len(p) && r.i < len(r.bufs) {
		b := r.bufs[r.i].ReadOnlyData()[r.off:]
		k := copy(p[n:], b)
		n += k
		r.off += k
		if r.off == r.bufs[r.i].Len() {
			r.i, r.off = r.i+1, 0
		}
	}
	return n
}

// varint reads a protobuf varint.
func (r *sliceReader) varint() (uint64, bool) {
	var b [binary.MaxVarintLen64]byte
	v, n := protowire.ConsumeVarint(b[:r.peek(b[:])])
	if n < 0 {
		return 0, false
	}
	r.skip(n)
	return v, true
}

func (r *sliceReader) skip(n int) {
	for n > 0 && r.i < len(r.bufs) {
		k := min(n, r.bufs[r.i].Len()-r.off)
		n -= k
		r.off += k
		if r.off == r.bufs[r.i].Len() {
			r.i, r.off = r.i+1, 0
		}
	}
}

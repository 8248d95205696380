package transport

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	shoalpb "github.com/shoalfs/shoal/proto"
)

// split cuts b into buffers of at most n bytes, as HTTP/2 frames do.
func split(b []byte, n int) mem.BufferSlice {
	var out mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, mem.SliceBuffer(b[:k]))
		b = b[k:]
	}
	return out
}

func TestCodecReadChunkResponse(t *testing.T) {
	data := make([]byte, 200_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	cases := []struct {
		name string
		msg  *shoalpb.ReadChunkResponse
	}{
		{"full", &shoalpb.ReadChunkResponse{Offset: 1 << 40, Data: data, Crcs: []uint32{1, 0xffffffff, 3, 4}}},
		{"offset zero", &shoalpb.ReadChunkResponse{Data: data[:10], Crcs: []uint32{7}}},
		{"no data", &shoalpb.ReadChunkResponse{Offset: 5}},
		{"empty", &shoalpb.ReadChunkResponse{}},
		{"exact", &shoalpb.ReadChunkResponse{Offset: 4097, Data: data[:4096], Crcs: []uint32{8}, HeadCrc: 0xfffffffe, TailCrc: 1, TailLength: 60000}},
		{"exact, no tail", &shoalpb.ReadChunkResponse{Offset: 4097, Data: data[:4096], Crcs: []uint32{8}, HeadCrc: 3}},
		{"exact, no head", &shoalpb.ReadChunkResponse{Offset: 0, Data: data[:4096], Crcs: []uint32{8}, TailCrc: 9, TailLength: 61440}},
	}
	c := newCodec()
	for _, tc := range cases {
		for _, frame := range []int{1, 3, 16384, 1 << 20} {
			wire, err := proto.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			var got shoalpb.ReadChunkResponse
			got.Crcs, got.TailLength = []uint32{99}, 7 // must be reset
			if err := c.Unmarshal(split(wire, frame), &got); err != nil {
				t.Fatalf("%s, frames of %d: %v", tc.name, frame, err)
			}
			if got.HeadCrc != tc.msg.HeadCrc || got.TailCrc != tc.msg.TailCrc || got.TailLength != tc.msg.TailLength {
				t.Fatalf("%s, frames of %d: head, tail crc and tail length %d, %d, %d; want %d, %d, %d", tc.name, frame,
					got.HeadCrc, got.TailCrc, got.TailLength, tc.msg.HeadCrc, tc.msg.TailCrc, tc.msg.TailLength)
			}
			if got.Offset != tc.msg.Offset || !bytes.Equal(got.Data, tc.msg.Data) || len(got.Crcs) != len(tc.msg.Crcs) {
				t.Fatalf("%s, frames of %d: got offset %d, %d bytes, crcs %v; want %d, %d, %v", tc.name, frame,
					got.Offset, len(got.Data), got.Crcs, tc.msg.Offset, len(tc.msg.Data), tc.msg.Crcs)
			}
			for i := range got.Crcs {
				if got.Crcs[i] != tc.msg.Crcs[i] {
					t.Fatalf("%s: crcs %v, want %v", tc.name, got.Crcs, tc.msg.Crcs)
				}
			}
		}
	}
}

// A message in another field order falls back to the general decoder.
func TestCodecReadChunkResponseOtherOrder(t *testing.T) {
	want := &shoalpb.ReadChunkResponse{Offset: 9, Data: []byte("abc"), Crcs: []uint32{5}}
	crcs, _ := proto.Marshal(&shoalpb.ReadChunkResponse{Crcs: want.Crcs})
	rest, _ := proto.Marshal(&shoalpb.ReadChunkResponse{Offset: want.Offset, Data: want.Data})
	var got shoalpb.ReadChunkResponse
	if err := newCodec().Unmarshal(split(append(crcs, rest...), 2), &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("got %v, want %v", &got, want)
	}
}

// A WriteChunkRequest with a large payload is marshalled around its data,
// which is sent in place, and decodes (with the standard decoder) to the
// same message; a small one goes through the proto codec as before.
func TestCodecWriteChunkRequest(t *testing.T) {
	c := newCodec()
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, m := range []*shoalpb.WriteChunkRequest{
		{Offset: 1 << 30, Data: data},
		{Header: &shoalpb.WriteChunkHeader{ChunkId: 7, Version: 2, Chain: []string{"a:1", "b:2"}, Sync: true}, Data: data},
		{Offset: 5, Data: data[:100]},
		{},
	} {
		bs, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) >= zeroCopyMin {
			if len(bs) != 2 || &bs[1].ReadOnlyData()[0] != &m.Data[0] {
				t.Errorf("a %d-byte payload was copied", len(m.Data))
			}
		}
		var got shoalpb.WriteChunkRequest
		if err := proto.Unmarshal(bs.Materialize(), &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, m) {
			t.Errorf("decoded %v, want %v", &got, m)
		}
	}
}

// A received WriteChunkRequest decodes to the message sent, whatever the
// frames and however it was marshalled (in place or by proto.Marshal);
// a field that appears twice falls back to the general decoder, which
// merges.
func TestCodecDecodeWriteChunkRequest(t *testing.T) {
	c := newCodec()
	data := make([]byte, 70_000)
	for i := range data {
		data[i] = byte(i * 11)
	}
	hdr := &shoalpb.WriteChunkHeader{ChunkId: 7, Version: 2, BaseVersion: 1, Chain: []string{"a:1", "b:2"}, Sync: true}
	for _, m := range []*shoalpb.WriteChunkRequest{
		{Header: hdr},
		{Header: hdr, Data: data},
		{Offset: 1 << 40, Data: data},
		{Offset: 3, Data: data[:10]},
		{Data: []byte{}},
		{},
	} {
		wires := map[string][]byte{}
		var err error
		if wires["proto"], err = proto.Marshal(m); err != nil {
			t.Fatal(err)
		}
		bs, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		wires["codec"] = bs.Materialize()
		for how, wire := range wires {
			for _, frame := range []int{1, 7, 16384, 1 << 20} {
				got := &shoalpb.WriteChunkRequest{Offset: 99, Data: []byte("stale")} // must be reset
				if !decodeWriteChunkRequest(split(wire, frame), got, heapAlloc) {
					t.Fatalf("%s-marshalled %v, frames of %d: not decoded", how, m.GetHeader(), frame)
				}
				if !proto.Equal(got, m) {
					t.Fatalf("%s-marshalled, frames of %d: decoded %v, want %v", how, frame, got.GetHeader(), m.GetHeader())
				}
			}
		}
	}

	twice, _ := proto.Marshal(&shoalpb.WriteChunkRequest{Data: []byte("abc")})
	more, _ := proto.Marshal(&shoalpb.WriteChunkRequest{Offset: 4, Data: []byte("de")})
	wire := append(twice, more...)
	if decodeWriteChunkRequest(split(wire, 3), &shoalpb.WriteChunkRequest{}, heapAlloc) {
		t.Fatal("a repeated field was decoded by the fast path")
	}
	var got shoalpb.WriteChunkRequest
	if err := c.Unmarshal(split(wire, 3), &got); err != nil {
		t.Fatal(err)
	}
	if want := (&shoalpb.WriteChunkRequest{Offset: 4, Data: []byte("de")}); !proto.Equal(&got, want) {
		t.Fatalf("repeated fields decoded to %v, want %v (the last one wins)", &got, want)
	}
	if decodeWriteChunkRequest(split([]byte{0x1a, 0x05, 'a'}, 1), &shoalpb.WriteChunkRequest{}, heapAlloc) {
		t.Fatal("a truncated payload was decoded")
	}
}

// A WriteChunkMsg decodes with its data in a pooled buffer, marshals back
// to the same wire bytes without copying it, and counts its references:
// the buffer goes back to the pool only when the receiver, a forwarder
// and gRPC have all let go.
func TestCodecWriteChunkMsg(t *testing.T) {
	c := newCodec()
	want := &shoalpb.WriteChunkRequest{Offset: 3 << 20, Data: bytes.Repeat([]byte("shoal"), 200_000)}
	wire, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var m WriteChunkMsg
	if err := c.Unmarshal(split(wire, 16384), &m); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.Req, want) {
		t.Fatalf("decoded offset %d, %d bytes; want %d, %d", m.Req.GetOffset(), len(m.Req.GetData()), want.Offset, len(want.Data))
	}
	if m.Buf == nil || &m.Buf.ReadOnlyData()[0] != &m.Req.Data[0] {
		t.Fatal("the data is not in the message's pooled buffer")
	}
	m.Ref() // a forwarder's
	out, err := c.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Materialize(), wire) {
		t.Fatal("re-marshalled bytes differ from the received ones")
	}
	if out[len(out)-1] != m.Buf {
		t.Fatal("the data was copied, not sent from the pooled buffer")
	}
	out.Free() // gRPC, once written
	m.Free()   // the forwarder, after SendMsg
	if len(m.Req.Data) != len(want.Data) || m.Buf.Len() != len(want.Data) {
		t.Fatal("the buffer went back while the receiver still held it")
	}
	m.Free() // the receiver: the last reference
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a Free past the last reference did not panic: the count is off")
			}
		}()
		m.Free()
	}()

	// What the fast path does not take still decodes, unpooled.
	twice, _ := proto.Marshal(&shoalpb.WriteChunkRequest{Data: []byte("abc")})
	more, _ := proto.Marshal(&shoalpb.WriteChunkRequest{Offset: 4, Data: []byte("de")})
	var g WriteChunkMsg
	if err := c.Unmarshal(split(append(twice, more...), 3), &g); err != nil {
		t.Fatal(err)
	}
	if g.Buf != nil || g.Req.GetOffset() != 4 || string(g.Req.GetData()) != "de" {
		t.Fatalf("repeated fields: %v, buffer %v; want offset 4, \"de\", no buffer", g.Req, g.Buf)
	}
	g.Free() // no buffer: a no-op
}

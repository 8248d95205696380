package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/chunkserver/chunk"
	"github.com/shoalfs/shoal/internal/testlog"
	shoalpb "github.com/shoalfs/shoal/proto"
)

func TestToStatus(t *testing.T) {
	s := &Server{log: testlog.New(t).WithField("test", t.Name())}
	s.log.Logger.SetLevel(logrus.FatalLevel) // the Internal case logs an error
	wrap := func(err error) error { return fmt.Errorf("chunk 1 version 2: %w", err) }
	cases := []struct {
		err    error
		code   codes.Code
		reason shoalpb.ErrorDetail_Reason
	}{
		{nil, codes.OK, 0},
		{wrap(context.Canceled), codes.Canceled, 0},
		{wrap(context.DeadlineExceeded), codes.DeadlineExceeded, 0},
		{wrap(ErrNotFound), codes.NotFound, 0},
		{wrap(ErrCorrupt), codes.DataLoss, shoalpb.ErrorDetail_CORRUPT},
		{wrap(ErrNoSpace), codes.ResourceExhausted, shoalpb.ErrorDetail_NO_SPACE},
		{wrap(ErrExists), codes.AlreadyExists, 0},
		{invalidf("bad"), codes.InvalidArgument, 0},
		{status.Error(codes.Unavailable, "peer down"), codes.Unavailable, 0},
		{errors.New("disk on fire"), codes.Internal, 0},
	}
	for _, c := range cases {
		st := status.Convert(s.toStatus(c.err))
		if st.Code() != c.code {
			t.Errorf("%v: code %v, want %v", c.err, st.Code(), c.code)
		}
		var reason shoalpb.ErrorDetail_Reason
		for _, d := range st.Details() {
			if ed, ok := d.(*shoalpb.ErrorDetail); ok {
				reason = ed.Reason
			}
		}
		if reason != c.reason {
			t.Errorf("%v: detail %v, want %v", c.err, reason, c.reason)
		}
	}
}

func TestVerifyMessage(t *testing.T) {
	data := make([]byte, 2*BlockSize+10)
	for i := range data {
		data[i] = byte(i * 31)
	}
	crcs := []uint32{chunk.Checksum(data[:BlockSize]), chunk.Checksum(data[BlockSize : 2*BlockSize]), chunk.Checksum(data[2*BlockSize:])}
	bad := append([]uint32(nil), crcs...)
	bad[1] ^= 1
	cases := []struct {
		name string
		m    *shoalpb.ReadChunkResponse
		want error
	}{
		{"good", &shoalpb.ReadChunkResponse{Offset: BlockSize, Data: data, Crcs: crcs}, nil},
		{"empty", &shoalpb.ReadChunkResponse{}, nil},
		{"checksum mismatch", &shoalpb.ReadChunkResponse{Data: data, Crcs: bad}, ErrCorrupt},
		{"missing checksum", &shoalpb.ReadChunkResponse{Data: data, Crcs: crcs[:2]}, ErrInvalid},
		{"unaligned", &shoalpb.ReadChunkResponse{Offset: 10, Data: data, Crcs: crcs}, ErrInvalid},
	}
	for _, c := range cases {
		if err := verifyMessage(c.m); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReportsSurviveFailedHeartbeats(t *testing.T) {
	r := newReports()
	r.added(ChunkInfo{ID: 1, Version: 1, Length: 10})
	r.removed(2, 1)
	r.corrupt(ChunkInfo{ID: 3, Version: 1})
	added, removed, bad, upto := r.pending()
	if len(added) != 1 || len(removed) != 1 || len(bad) != 1 {
		t.Fatalf("pending: %v %v %v", added, removed, bad)
	}
	// That heartbeat failed: nothing is acknowledged, so all is sent again,
	// along with a change made meanwhile.
	r.removed(1, 1) // replaces "1 added"
	added, removed, bad, upto = r.pending()
	if len(added) != 0 || len(removed) != 2 || len(bad) != 1 {
		t.Fatalf("pending after a failed heartbeat: %v %v %v", added, removed, bad)
	}
	// A change made while a heartbeat is in flight outlives its ack.
	r.added(ChunkInfo{ID: 4, Version: 1})
	r.acked(upto)
	added, removed, bad, _ = r.pending()
	if len(added) != 1 || added[0].ChunkId != 4 || len(removed) != 0 || len(bad) != 0 {
		t.Fatalf("pending after the ack: %v %v %v", added, removed, bad)
	}
	// A registration covers changes but not corruption.
	r.corrupt(ChunkInfo{ID: 5, Version: 1})
	r.registered(r.mark())
	added, _, bad, _ = r.pending()
	if len(added) != 0 || len(bad) != 1 {
		t.Fatalf("pending after registration: %v %v", added, bad)
	}
}

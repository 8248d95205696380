package chunkserver

import (
	"context"
	"io"
	"sync"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalfs/shoal/chunkserver/diskstore"
	"github.com/shoalfs/shoal/internal/hugebuf"
	"github.com/shoalfs/shoal/internal/transport"
	shoalpb "github.com/shoalfs/shoal/proto"
)

// Server is a chunkserver: the ChunkServer gRPC service over a Store, and
// (in Run) the registration, heartbeats and scrubbing.
//
// It embeds UnimplementedChunkServerServer so that an RPC added to the
// proto is answered Unimplemented until it is written here, rather than
// breaking the build of every package at once.
type Server struct {
	shoalpb.UnimplementedChunkServerServer

	cfg     Config
	log     *logrus.Entry
	store   Store
	peers   *peers
	reports *reports
	// bufs holds transport.MaxDataMessage-sized buffers for reads, the
	// first readHugeLimit of them in huge pages: a read of a whole
	// buffer goes to the disk with O_DIRECT, one request from a huge
	// page (package hugebuf).
	bufs *hugebuf.Buffers

	// ctx ends at Close; every handler and Run derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards nodeID, closed, and wg.Add against Close's wg.Wait
	nodeID string
	closed bool
	wg     sync.WaitGroup // running handlers and Run

	closeOnce sync.Once
	closeErr  error
}

// New opens the store in cfg.Dir (sweeping temporary files a crash left)
// and loads the persisted node id. It does not dial anyone. The caller
// must Close the server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReplicateWorkers == 0 {
		cfg.ReplicateWorkers = 4
	}
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	ds, err := diskstore.Open(cfg.Dir, diskstore.Options{Capacity: cfg.Capacity, Log: log})
	if err != nil {
		return nil, err
	}
	var store Store = ds
	if cfg.WrapStore != nil {
		store = cfg.WrapStore(store)
	}
	id, err := loadNodeID(cfg.Dir)
	if err != nil {
		ds.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     log,
		store:   store,
		peers:   newPeers(),
		reports: newReports(),
		ctx:     ctx,
		cancel:  cancel,
		nodeID:  id,
	}
	if s.bufs, err = hugebuf.NewBuffers(transport.MaxDataMessage, readHugeLimit); err != nil {
		cancel()
		ds.Close()
		return nil, err
	}
	return s, nil
}

// RegisterService registers the ChunkServer service on g.
func (s *Server) RegisterService(g *grpc.Server) {
	shoalpb.RegisterChunkServerServer(g, s)
}

// NodeID is the id the manager gave this node, or "" before the first
// registration ever.
func (s *Server) NodeID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodeID
}

// Close stops Run, waits for the RPC handlers still running (stop the
// gRPC server first, or Close waits for its streams to end), and closes
// the peer connections and the store. Close may be called more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		s.bufs.Close()
		s.closeErr = s.peers.close()
		if err := s.store.Close(); s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// begin registers a handler (or Run) with the server: the returned ctx
// ends when parent does or the server closes, and end must be called when
// the work is done. It fails once Close has started.
func (s *Server) begin(parent context.Context) (ctx context.Context, end func(), err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, status.Error(codes.Unavailable, "chunkserver is shutting down")
	}
	s.wg.Add(1)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel(); s.wg.Done() }, nil
}

// Run registers with the manager (retrying while it is unreachable),
// then heartbeats every Config.Heartbeat and scrubs every
// Config.ScrubInterval, until ctx ends or the server closes. It returns
// nil then; a manager that is down never ends it.
func (s *Server) Run(ctx context.Context) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil // closed: nothing to run
	}
	defer end()
	conn, err := dial(s.cfg.Manager)
	if err != nil {
		return err
	}
	defer conn.Close()

	var wg sync.WaitGroup
	if s.cfg.ScrubInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.scrubLoop(ctx)
		}()
	}
	s.heartbeatLoop(ctx, shoalpb.NewManagerClient(conn))
	wg.Wait()
	return nil
}

// readHugeLimit bounds the huge-page memory of Server.bufs: 32 reads
// in flight.
const readHugeLimit = 32 << 20

func (s *Server) getBuf() *[]byte  { return s.bufs.Get() }
func (s *Server) putBuf(b *[]byte) { s.bufs.Put(b) }

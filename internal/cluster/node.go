// Package cluster runs shoal's daemons as owned, stoppable units inside one
// process. The `shoal manager` and `shoal chunkserver` commands run one
// unit each; `shoal demo` and the tests run a whole cluster.
//
// A unit owns its listener, its gRPC server and its background loop; Stop
// ends all three and waits for them, so nothing it started outlives it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/healer"
	"github.com/shoalfs/shoal/internal/rawread"
	"github.com/shoalfs/shoal/internal/transport"
	"github.com/shoalfs/shoal/metadata"
)

// unit is a gRPC server plus a background loop, stopped together.
type unit struct {
	srv    *grpc.Server
	lis    net.Listener
	cancel context.CancelFunc
	grace  time.Duration // how long a graceful stop waits; gracePeriod

	wg      sync.WaitGroup
	errOnce sync.Once
	err     error // first error from Serve or the loop; guarded by errOnce
	done    chan struct{}
	stop    sync.Once
}

// start serves srv on lis and runs loop until Stop or until either fails.
func start(srv *grpc.Server, lis net.Listener, loop func(ctx context.Context) error) *unit {
	ctx, cancel := context.WithCancel(context.Background())
	u := &unit{srv: srv, lis: lis, cancel: cancel, grace: gracePeriod, done: make(chan struct{})}
	u.wg.Add(2)
	go func() {
		defer u.wg.Done()
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			u.fail(fmt.Errorf("serve %s: %w", lis.Addr(), err))
		}
	}()
	go func() {
		defer u.wg.Done()
		if err := loop(ctx); err != nil && ctx.Err() == nil {
			u.fail(err)
		}
	}()
	return u
}

func (u *unit) fail(err error) {
	u.errOnce.Do(func() { u.err = err; close(u.done) })
	u.cancel()
}

// Done is closed when the unit fails on its own (not on Stop).
func (u *unit) Done() <-chan struct{} { return u.done }

// Err is the failure that closed Done, if any.
func (u *unit) Err() error {
	select {
	case <-u.done:
		return u.err
	default:
		return nil
	}
}

// gracePeriod bounds how long a graceful stop waits for RPCs in flight.
// A client may hold a write stream open and idle (a paused cp through a
// mount): past the grace period its connection is cut, and the client
// rebuilds its pipeline elsewhere.
const gracePeriod = 10 * time.Second

// shutdown stops the loop and the server and waits for both. graceful
// lets in-flight RPCs finish, for up to u.grace; otherwise connections
// are cut at once, which is the closest an in-process unit gets to kill -9.
func (u *unit) shutdown(graceful bool) {
	u.stop.Do(func() {
		u.cancel()
		if graceful {
			done := make(chan struct{})
			go func() {
				u.srv.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(u.grace):
				u.srv.Stop() // GracefulStop then returns too
				<-done
			}
		} else {
			u.srv.Stop()
		}
		u.wg.Wait()
	})
}

// Manager is a running manager: the metadata service, its background
// loop, and the healer it owns.
type Manager struct {
	*unit
	M    *metadata.Manager
	H    *healer.Healer
	repl *replicator
}

// StartManager opens the manager's store and serves it on lis, with the
// healer running beside it. The caller must Stop it.
func StartManager(cfg metadata.Config, hcfg healer.Config, lis net.Listener) (*Manager, error) {
	m, err := metadata.Open(cfg)
	if err != nil {
		return nil, err
	}
	if hcfg.Log == nil && cfg.Log != nil {
		hcfg.Log = cfg.Log.WithField("component", "healer")
	}
	repl := newReplicator(m)
	h, err := healer.New(hcfg, inventory{m}, repl)
	if err != nil {
		m.Close()
		return nil, err
	}
	m.SetHealerStatus(func() metadata.HealerStatus {
		s := h.Stats()
		return metadata.HealerStatus{Queued: uint64(s.Queued), Copying: uint64(s.Copying), Done: s.Copied,
			Failed: s.Failed, Deleted: s.Deleted, BytesPerSec: s.BytesPerSecond}
	})
	srv := grpc.NewServer(transport.ServerOptions()...)
	m.RegisterService(srv)
	loop := func(ctx context.Context) error {
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return m.Run(ctx) })
		g.Go(func() error { return h.Run(ctx) })
		return g.Wait()
	}
	return &Manager{unit: start(srv, lis, loop), M: m, H: h, repl: repl}, nil
}

// Addr is the address the manager serves on.
func (m *Manager) Addr() string { return m.lis.Addr().String() }

// Stop shuts the manager down cleanly and closes its store.
func (m *Manager) Stop() error {
	m.shutdown(true)
	return errors.Join(m.repl.Close(), m.M.Close())
}

// Kill cuts every connection at once and closes the store without waiting
// for RPCs in flight.
func (m *Manager) Kill() error {
	m.shutdown(false)
	return errors.Join(m.repl.Close(), m.M.Close())
}

// ChunkServer is a running chunkserver.
type ChunkServer struct {
	*unit
	S   *chunkserver.Server
	mux *rawread.Mux
}

// StartChunkServer opens the chunk store in cfg.Dir and serves it on lis,
// gRPC and raw reads (package rawread) both; it registers with the
// manager in the background. The caller must Stop it.
func StartChunkServer(cfg chunkserver.Config, lis net.Listener) (*ChunkServer, error) {
	if cfg.Advertise == "" {
		cfg.Advertise = lis.Addr().String()
	}
	s, err := chunkserver.New(cfg)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(transport.ServerOptions()...)
	s.RegisterService(srv)
	mux := rawread.NewMux(lis, s.ServeRaw)
	loop := s.Run
	// Readers on this host open replicas themselves (package localread).
	if ul := s.ListenLocal(); ul != nil {
		loop = func(ctx context.Context) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return s.Run(ctx) })
			g.Go(func() error { s.ServeLocal(ctx, ul); return nil })
			return g.Wait()
		}
	}
	return &ChunkServer{unit: start(srv, mux, loop), S: s, mux: mux}, nil
}

// Addr is the address the chunkserver serves on.
func (c *ChunkServer) Addr() string { return c.lis.Addr().String() }

// Stop shuts the chunkserver down cleanly. Raw reads in flight are cut
// (their readers fail over), gRPC calls are let finish.
func (c *ChunkServer) Stop() error {
	c.shutdown(true)
	c.mux.Wait()
	return c.S.Close()
}

// Kill cuts every connection at once, then closes the store.
func (c *ChunkServer) Kill() error {
	c.shutdown(false)
	c.mux.Wait()
	return c.S.Close()
}

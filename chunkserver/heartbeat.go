package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	shoalpb "github.com/shoalfs/shoal/proto"
)

const (
	// nodeIDFile, in Config.Dir, holds the id the manager gave this node.
	nodeIDFile = "node-id"
	// registerTimeout bounds one Register call (it carries the full report).
	registerTimeout = 30 * time.Second
	// minHeartbeatTimeout is the least time one Heartbeat call is given.
	minHeartbeatTimeout = 5 * time.Second
)

// heartbeatLoop registers, then heartbeats, until ctx ends. A manager that
// cannot be reached is retried with capped backoff and logged once per
// outage.
func (s *Server) heartbeatLoop(ctx context.Context, mc shoalpb.ManagerClient) {
	interval := s.cfg.Heartbeat
	retry := backoff{base: min(100*time.Millisecond, interval), max: 2 * interval}
	registered, down := false, false
	for {
		var err error
		if !registered {
			var asked time.Duration
			if asked, err = s.register(ctx, mc); err == nil {
				registered = true
				if asked > 0 {
					interval = asked
				}
			}
		} else {
			var again bool
			if again, err = s.heartbeat(ctx, mc, interval); err == nil && again {
				s.log.Info("manager asked for a new registration")
				registered = false
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		wait := interval
		switch {
		case err != nil && !down:
			down = true
			s.log.WithError(err).WithField("manager", s.cfg.Manager).Warn("manager unreachable; retrying")
			wait = retry.next()
		case err != nil:
			s.log.WithError(err).Debug("manager still unreachable")
			wait = retry.next()
		case down:
			down = false
			s.log.WithField("manager", s.cfg.Manager).Info("manager reachable again")
			retry.reset()
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// register sends the full report and adopts the node id the manager
// returns; it also returns the heartbeat interval the manager asked for.
func (s *Server) register(ctx context.Context, mc shoalpb.ManagerClient) (time.Duration, error) {
	mark := s.reports.mark() // the walk below covers every change up to here
	var chunks []*shoalpb.ChunkReport
	err := s.store.Walk(ctx, func(info ChunkInfo, err error) error {
		if err != nil {
			s.noteCorrupt(info, err)
			return nil
		}
		chunks = append(chunks, chunkReport(info))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list replicas: %w", err)
	}
	capacity, used, err := s.store.Usage(ctx)
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	resp, err := mc.Register(rctx, &shoalpb.RegisterRequest{
		NodeId:        s.NodeID(),
		Addr:          s.cfg.Advertise,
		Rack:          s.cfg.Rack,
		CapacityBytes: uint64(capacity),
		UsedBytes:     uint64(used),
		Chunks:        chunks,
	})
	if err != nil {
		return 0, fmt.Errorf("register: %w", err)
	}
	if resp.NodeId == "" {
		return 0, errors.New("register: the manager returned no node id")
	}
	if old := s.NodeID(); resp.NodeId != old {
		if err := saveNodeID(s.cfg.Dir, resp.NodeId); err != nil {
			return 0, err
		}
		s.mu.Lock()
		s.nodeID = resp.NodeId
		s.mu.Unlock()
		if old != "" {
			s.log.WithField("old", old).WithField("new", resp.NodeId).Warn("the manager gave this node a new id")
		}
	}
	s.reports.registered(mark)
	s.log.WithField("node", resp.NodeId).WithField("replicas", len(chunks)).Info("registered with the manager")
	return time.Duration(resp.HeartbeatIntervalNs), nil
}

// heartbeat sends usage and the changes since the last acknowledged
// heartbeat, and carries out the reply's deletes. It reports whether the
// manager wants a new registration.
func (s *Server) heartbeat(ctx context.Context, mc shoalpb.ManagerClient, interval time.Duration) (bool, error) {
	capacity, used, err := s.store.Usage(ctx)
	if err != nil {
		return false, err
	}
	added, removed, corrupt, upto := s.reports.pending()
	rctx, cancel := context.WithTimeout(ctx, max(interval, minHeartbeatTimeout))
	defer cancel()
	resp, err := mc.Heartbeat(rctx, &shoalpb.HeartbeatRequest{
		NodeId:        s.NodeID(),
		CapacityBytes: uint64(capacity),
		UsedBytes:     uint64(used),
		Added:         added,
		Removed:       removed,
		Corrupt:       corrupt,
	})
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	if resp.Reregister {
		// The manager ignored this report; the registration's full report
		// replaces the changes, and corrupt ones are sent again.
		return true, nil
	}
	s.reports.acked(upto)
	for _, d := range resp.Delete {
		if err := s.deleteReplica(ctx, ChunkID(d.ChunkId), d.Version); err != nil {
			s.log.WithError(err).Warn("delete asked by the manager failed")
		}
	}
	return false, nil
}

func chunkReport(info ChunkInfo) *shoalpb.ChunkReport {
	return &shoalpb.ChunkReport{ChunkId: uint64(info.ID), Version: info.Version, Length: uint64(info.Length), Summary: info.Summary}
}

// reports collects what the next heartbeat tells the manager: replicas
// sealed, removed, and found corrupt. Entries stay until a heartbeat that
// carried them is acknowledged, so a failed heartbeat loses nothing.
// Each entry has a sequence number; an acknowledgement removes only the
// entries the acknowledged heartbeat carried.
type reports struct {
	mu      sync.Mutex // guards the fields below
	seq     uint64
	changes map[replicaKey]change // the latest of sealed/removed per replica
	bad     map[replicaKey]change // found corrupt
}

type replicaKey struct {
	id      ChunkID
	version uint64
}

type change struct {
	info  ChunkInfo
	added bool
	seq   uint64
}

func newReports() *reports {
	return &reports{changes: make(map[replicaKey]change), bad: make(map[replicaKey]change)}
}

func (r *reports) added(info ChunkInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.changes[replicaKey{info.ID, info.Version}] = change{info: info, added: true, seq: r.seq}
}

func (r *reports) removed(id ChunkID, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.changes[replicaKey{id, version}] = change{info: ChunkInfo{ID: id, Version: version}, seq: r.seq}
}

func (r *reports) corrupt(info ChunkInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.bad[replicaKey{info.ID, info.Version}] = change{info: info, seq: r.seq}
}

// mark returns the sequence number of the latest entry.
func (r *reports) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// pending returns every entry, and the mark to acknowledge them with.
func (r *reports) pending() (added, removed, corrupt []*shoalpb.ChunkReport, upto uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.changes {
		if c.added {
			added = append(added, chunkReport(c.info))
		} else {
			removed = append(removed, chunkReport(c.info))
		}
	}
	for _, c := range r.bad {
		corrupt = append(corrupt, chunkReport(c.info))
	}
	return added, removed, corrupt, r.seq
}

// acked drops the entries up to mark: a heartbeat carried them.
func (r *reports) acked(mark uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	drop(r.changes, mark)
	drop(r.bad, mark)
}

// registered drops the changes up to mark: a full report covered them.
// Corrupt entries stay for the next heartbeat.
func (r *reports) registered(mark uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	drop(r.changes, mark)
}

func drop(m map[replicaKey]change, mark uint64) {
	for k, c := range m {
		if c.seq <= mark {
			delete(m, k)
		}
	}
}

// loadNodeID reads the persisted node id; "" if there is none yet.
func loadNodeID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, nodeIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load node id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// saveNodeID persists id atomically: write a temporary file, fsync,
// rename over the old one, fsync the directory.
func saveNodeID(dir, id string) (err error) {
	tmp := filepath.Join(dir, nodeIDFile+".tmp")
	defer func() {
		if err != nil {
			os.Remove(tmp)
			err = fmt.Errorf("save node id: %w", err)
		}
	}()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(id + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, nodeIDFile)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// backoff is a capped exponential backoff with jitter.
type backoff struct {
	base, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.base
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return time.Duration(float64(b.cur) * (0.8 + 0.4*rand.Float64()))
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

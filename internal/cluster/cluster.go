package cluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/shoalfs/shoal/chunkserver"
	"github.com/shoalfs/shoal/healer"
	"github.com/shoalfs/shoal/metadata"
)

// Config describes an in-process cluster.
type Config struct {
	// Dir holds the manager's store in Dir/manager and chunkserver i's
	// chunks in Dir/csI.
	Dir string
	// ChunkServers is how many chunkservers to start.
	ChunkServers int
	// Racks, if set, assigns chunkserver i to Racks[i%len(Racks)].
	Racks []string
	// Capacity each chunkserver offers; 0 means its filesystem's size.
	Capacity int64
	// Manager is the manager's configuration; Dir and Log are filled in.
	Manager metadata.Config
	// Healer is the healer's configuration; Log is filled in.
	Healer healer.Config
	// Heartbeat is the chunkservers' heartbeat interval.
	Heartbeat time.Duration
	// Log receives every component's lines, each with a component field.
	Log *logrus.Entry
}

// DefaultConfig is a three-chunkserver cluster with the manager's defaults.
func DefaultConfig() Config {
	return Config{ChunkServers: 3, Manager: metadata.DefaultConfig(), Healer: healer.DefaultConfig(),
		Heartbeat: chunkserver.DefaultConfig().Heartbeat}
}

// Validate checks the fields that Start relies on.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("cluster: Dir is required")
	case c.ChunkServers < 1:
		return fmt.Errorf("cluster: ChunkServers = %d, want at least 1", c.ChunkServers)
	}
	return nil
}

// Cluster is a manager and chunkservers in this process, on 127.0.0.1.
type Cluster struct {
	cfg Config

	mu      sync.Mutex // guards manager and chunk; tests stop and restart members concurrently with reads of Addr
	manager *Manager
	mAddr   string
	chunk   []*ChunkServer // nil while stopped
	csAddr  []string       // fixed per index, reused on restart
}

// Start starts the manager and every chunkserver. It does not wait for
// the chunkservers to register; see clustertest for waits.
func Start(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		cfg.Log = logrus.NewEntry(l)
	}
	c := &Cluster{cfg: cfg, chunk: make([]*ChunkServer, cfg.ChunkServers), csAddr: make([]string, cfg.ChunkServers)}
	if err := c.StartManager(); err != nil {
		return nil, err
	}
	for i := range c.chunk {
		if err := c.StartChunkServer(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// ManagerAddr is the manager's address; it stays the same across restarts.
func (c *Cluster) ManagerAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mAddr
}

// Manager returns the running manager, or nil while it is stopped.
func (c *Cluster) Manager() *Manager {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.manager
}

// ChunkServer returns chunkserver i, or nil while it is stopped.
func (c *Cluster) ChunkServer(i int) *ChunkServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chunk[i]
}

// ChunkServerAddr is chunkserver i's address, stable across restarts.
func (c *Cluster) ChunkServerAddr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.csAddr[i]
}

// ChunkServerDir is chunkserver i's data directory.
func (c *Cluster) ChunkServerDir(i int) string {
	return filepath.Join(c.cfg.Dir, fmt.Sprintf("cs%d", i))
}

// StartManager (re)starts the manager on its data directory and address.
func (c *Cluster) StartManager() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.manager != nil {
		return errors.New("cluster: manager already running")
	}
	lis, err := listen(c.mAddr)
	if err != nil {
		return fmt.Errorf("cluster: manager: %w", err)
	}
	cfg := c.cfg.Manager
	cfg.Dir = filepath.Join(c.cfg.Dir, "manager")
	cfg.Log = c.cfg.Log.WithField("component", "manager")
	hcfg := c.cfg.Healer
	if hcfg.Interval == 0 {
		hcfg = healer.DefaultConfig()
	}
	m, err := StartManager(cfg, hcfg, lis)
	if err != nil {
		lis.Close()
		return err
	}
	c.manager, c.mAddr = m, m.Addr()
	return nil
}

// StopManager stops the manager cleanly (kill=false) or by cutting its
// connections at once (kill=true).
func (c *Cluster) StopManager(kill bool) error {
	c.mu.Lock()
	m := c.manager
	c.manager = nil
	c.mu.Unlock()
	if m == nil {
		return nil
	}
	if kill {
		return m.Kill()
	}
	return m.Stop()
}

// StartChunkServer (re)starts chunkserver i on its data directory and
// address: it keeps its node id and its chunks.
func (c *Cluster) StartChunkServer(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chunk[i] != nil {
		return fmt.Errorf("cluster: chunkserver %d already running", i)
	}
	lis, err := listen(c.csAddr[i])
	if err != nil {
		return fmt.Errorf("cluster: chunkserver %d: %w", i, err)
	}
	cfg := chunkserver.DefaultConfig()
	cfg.Manager = c.mAddr
	cfg.Dir = c.ChunkServerDir(i)
	cfg.Capacity = c.cfg.Capacity
	if c.cfg.Heartbeat > 0 {
		cfg.Heartbeat = c.cfg.Heartbeat
	}
	if len(c.cfg.Racks) > 0 {
		cfg.Rack = c.cfg.Racks[i%len(c.cfg.Racks)]
	}
	cfg.Log = c.cfg.Log.WithFields(logrus.Fields{"component": "chunkserver", "cs": i})
	s, err := StartChunkServer(cfg, lis)
	if err != nil {
		lis.Close()
		return err
	}
	c.chunk[i], c.csAddr[i] = s, s.Addr()
	return nil
}

// StopChunkServer stops chunkserver i cleanly (kill=false) or by cutting
// its connections at once (kill=true). Its data directory stays.
func (c *Cluster) StopChunkServer(i int, kill bool) error {
	c.mu.Lock()
	s := c.chunk[i]
	c.chunk[i] = nil
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	if kill {
		return s.Kill()
	}
	return s.Stop()
}

// Size is the number of chunkserver slots.
func (c *Cluster) Size() int { return len(c.chunk) }

// Close stops every member cleanly. It may be called more than once.
func (c *Cluster) Close() error {
	var errs []error
	for i := range c.chunk {
		errs = append(errs, c.StopChunkServer(i, false))
	}
	errs = append(errs, c.StopManager(false))
	return errors.Join(errs...)
}

// listen listens on addr, or on a free 127.0.0.1 port if addr is empty.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}

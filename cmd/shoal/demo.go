package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/fuse"
	"github.com/shoalfs/shoal/internal/cluster"
	"github.com/shoalfs/shoal/metadata"
)

// demo tells the whole story in one command: an embedded cluster, a
// mount, a file copied in, a chunkserver that holds replicas killed, the
// manager declaring it dead, the healer restoring replication, and the
// file read back and checked.
type demo struct {
	e     env
	start time.Time
	step  int
	c     *cluster.Cluster
	cl    *client.Client
	mnt   *fuse.Server // nil when FUSE is unavailable
}

func runDemo(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "demo", "")
	keep := fs.Bool("keep", false, "leave the cluster and the mount running for a look around, until Ctrl-C")
	size := sizeValue(128 << 20)
	fs.Var(&size, "size", "size of the generated file")
	chunk := sizeValue(16 << 20)
	fs.Var(&chunk, "chunk-size", "chunk size (small, so the file spans several chunks)")
	dir := fs.String("dir", "", "directory for the cluster's data and the mount (default: a new temporary directory)")
	noMount := fs.Bool("no-mount", false, "copy with the client instead of through a FUSE mount")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: demo takes no arguments", errUsage)
	}
	if lf.level == "info" {
		lf.level = "warn" // the narration is the output; daemons speak up only for trouble
	}
	root, err := lf.logger(e.stderr)
	if err != nil {
		return err
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "shoal-demo-"); err != nil {
			return err
		}
		if !*keep {
			defer os.RemoveAll(*dir)
		}
	}
	d := &demo{e: e, start: time.Now()}
	defer d.close()
	return d.run(ctx, root.WithField("component", "demo"), *dir, int64(size), int64(chunk), *noMount, *keep)
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.e.stdout, format+"\n", args...)
}

func (d *demo) header(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.e.stdout, "\n[%5.1fs] %d. %s\n", time.Since(d.start).Seconds(), d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context, log *logrus.Entry, dir string, size, chunkSize int64, noMount, keep bool) error {
	const servers, replication = 4, 3
	d.header("Starting an embedded cluster in %s: a manager and %d chunkservers, replication %d", dir, servers, replication)
	mcfg := metadata.DefaultConfig()
	mcfg.Replication = replication
	mcfg.ChunkSize = chunkSize
	mcfg.DeadAfter = 3 * time.Second
	c, err := cluster.Start(cluster.Config{
		Dir: filepath.Join(dir, "data"), ChunkServers: servers, Manager: mcfg,
		Heartbeat: 250 * time.Millisecond, Log: log,
	})
	if err != nil {
		return err
	}
	d.c = c
	ccfg := client.DefaultConfig()
	ccfg.InlineMax = 0 // the story is chunks and their replicas, even for a tiny --size
	ccfg.Manager = c.ManagerAddr()
	ccfg.Log = log.WithField("component", "client")
	if d.cl, err = client.New(ccfg); err != nil {
		return err
	}
	st, err := d.waitStatus(ctx, "every chunkserver to register", func(st client.StatusReport) bool { return countState(st, "live") == servers })
	if err != nil {
		return err
	}
	d.say("manager on %s, dead after %v without a heartbeat (a short demo setting; the default is 10s)", c.ManagerAddr(), mcfg.DeadAfter)
	printStatus(d.e.stdout, st, time.Now())

	name := "/demo/file.bin"
	local := name
	if !noMount {
		mp := filepath.Join(dir, "mnt")
		o := fuse.DefaultOptions()
		o.Log = log.WithField("component", "mount")
		err := os.MkdirAll(mp, 0o755)
		if err == nil {
			d.mnt, err = fuse.Mount(ctx, d.cl, mp, o)
		}
		if err != nil {
			d.header("FUSE is not available here (%v): the demo goes on with the Go client", err)
		} else {
			d.header("Mounted the cluster at %s", mp)
			local = filepath.Join(mp, name)
		}
	}

	d.header("Copying a %s generated file in: %s", formatSize(size), local)
	sum, took, err := d.copyIn(ctx, local, name, size)
	if err != nil {
		return err
	}
	d.say("copied in %v (%s/s), sha256 %s", took.Round(time.Millisecond), formatSize(int64(float64(size)/took.Seconds())), sum[:16])

	locs, err := d.cl.Locate(ctx, name)
	if err != nil {
		return err
	}
	d.header("Where its %d chunks are (each on %d chunkservers):", len(locs), replication)
	perNode := map[string]int{}
	for _, l := range locs {
		var nodes []string
		for _, n := range l.Nodes {
			perNode[n.Addr]++
			nodes = append(nodes, d.nodeName(n.Addr))
		}
		d.say("  chunk %2d (id %d, %s): %s", l.Index, l.ChunkID, formatSize(l.Length), strings.Join(nodes, ", "))
	}
	victim := d.busiest(perNode)
	d.header("Killing %s, which holds %d replicas: every connection cut at once, as kill -9 would (scripts/failure-demo.sh does it to a real process)",
		d.nodeName(c.ChunkServerAddr(victim)), perNode[c.ChunkServerAddr(victim)])
	killed := time.Now()
	if err := c.StopChunkServer(victim, true); err != nil {
		return err
	}

	d.header("Reading the file while that chunkserver is down: reads fail over at once")
	t0 := time.Now()
	got, err := d.readSum(ctx, local, name)
	if err != nil {
		return err
	}
	if got != sum {
		return fmt.Errorf("demo: sha256 mismatch while a node was down: %s, want %s", got, sum)
	}
	d.say("sha256 ok, read in %v", time.Since(t0).Round(time.Millisecond))

	d.header("Waiting for the manager to declare it dead")
	victimAddr := c.ChunkServerAddr(victim)
	if _, err := d.waitStatus(ctx, "the node to be declared dead", func(st client.StatusReport) bool {
		return nodeState(st, victimAddr) == "dead"
	}); err != nil {
		return err
	}
	d.say("%s is dead after %v", d.nodeName(victimAddr), time.Since(killed).Round(100*time.Millisecond))
	dead := time.Now()

	d.header("The healer copies the lost replicas from the survivors")
	if err := d.waitHealed(ctx); err != nil {
		return err
	}
	d.say("every chunk has %d live replicas again, %v after the node was declared dead", replication, time.Since(dead).Round(100*time.Millisecond))
	if st, err = d.cl.Status(ctx); err == nil {
		printStatus(d.e.stdout, st, time.Now())
	}

	d.header("Reading the file back and checking its sha256")
	if got, err = d.readSum(ctx, local, name); err != nil {
		return err
	}
	if got != sum {
		return fmt.Errorf("demo: sha256 mismatch after healing: %s, want %s", got, sum)
	}
	d.say("sha256 %s: every byte is there", got)
	rep, err := d.cl.Fsck(ctx, "/")
	if err != nil {
		return err
	}
	printFsck(d.e.stdout, rep)

	if keep {
		d.header("--keep: the cluster stays up until Ctrl-C")
		d.say("  SHOAL_MANAGER=%s shoal status", c.ManagerAddr())
		if d.mnt != nil {
			d.say("  ls -l %s", d.mnt.Mountpoint())
		}
		d.say("  (%s is still down; restart it with the cluster's Go API, or kill another)", d.nodeName(victimAddr))
		<-ctx.Done()
	}
	d.header("Done in %v: unmounting and stopping the cluster", time.Since(d.start).Round(100*time.Millisecond))
	return nil
}

func (d *demo) close() {
	if d.mnt != nil {
		if err := d.mnt.Unmount(); err != nil {
			fmt.Fprintf(d.e.stderr, "demo: unmount: %v\n", err)
		}
	}
	if d.cl != nil {
		d.cl.Close()
	}
	if d.c != nil {
		d.c.Close()
	}
}

// nodeName names a chunkserver by its slot and address.
func (d *demo) nodeName(addr string) string {
	for i := 0; i < d.c.Size(); i++ {
		if d.c.ChunkServerAddr(i) == addr {
			return fmt.Sprintf("cs%d (%s)", i, addr)
		}
	}
	return addr
}

// busiest is the slot of the running chunkserver with the most replicas.
func (d *demo) busiest(perNode map[string]int) int {
	slots := make([]int, d.c.Size())
	for i := range slots {
		slots[i] = i
	}
	sort.SliceStable(slots, func(a, b int) bool {
		return perNode[d.c.ChunkServerAddr(slots[a])] > perNode[d.c.ChunkServerAddr(slots[b])]
	})
	return slots[0]
}

// copyIn writes size bytes of generated data to the file, through the
// mount (local is a path on it) or through the client, and returns their
// sha256.
func (d *demo) copyIn(ctx context.Context, local, name string, size int64) (string, time.Duration, error) {
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(&generated{r: rand.NewChaCha8([32]byte{'s', 'h', 'o', 'a', 'l'})}, size), h)
	bar := newProgress(d.e.stdout, "  copying", true)
	t0 := time.Now()
	var err error
	if d.mnt != nil {
		err = copyToFile(local, &progressReader{r: src, total: size, fn: bar.update})
	} else {
		if _, err = d.cl.MkdirAll(ctx, "/demo", 0o755); err == nil {
			_, err = d.cl.Put(ctx, src, size, name, bar.update)
		}
	}
	bar.finish(err)
	return hex.EncodeToString(h.Sum(nil)), time.Since(t0), err
}

func copyToFile(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readSum reads the file back, through the mount or the client.
func (d *demo) readSum(ctx context.Context, local, name string) (string, error) {
	h := sha256.New()
	if d.mnt != nil {
		if err := hashFile(local, h); err != nil {
			return "", err
		}
	} else if _, err := d.cl.Get(ctx, name, h, nil); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(path string, h hash.Hash) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(h, f)
	return err
}

// waitStatus polls the cluster status until cond holds.
func (d *demo) waitStatus(ctx context.Context, what string, cond func(client.StatusReport) bool) (client.StatusReport, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := d.cl.Status(ctx)
		if err == nil && cond(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("demo: waiting for %s: %w", what, errors.Join(ctx.Err(), err))
		case <-tick.C:
		}
	}
}

// waitHealed shows the healer's progress until fsck finds every chunk
// healthy.
func (d *demo) waitHealed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		rep, err := d.cl.Fsck(ctx, "/")
		if err == nil && rep.OK() {
			return nil
		}
		if st, err := d.cl.Status(ctx); err == nil {
			line := fmt.Sprintf("  %d chunks under-replicated; healer: %d copying, %d copied, %s/s",
				st.UnderReplicated, st.Healer.Copying, st.Healer.Done, formatSize(int64(st.Healer.BytesPerSec)))
			if line != last {
				d.say("%s", line)
				last = line
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: waiting for the healer: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func countState(st client.StatusReport, state string) int {
	n := 0
	for _, nd := range st.Nodes {
		if nd.State == state {
			n++
		}
	}
	return n
}

func nodeState(st client.StatusReport, addr string) string {
	for _, nd := range st.Nodes {
		if nd.Addr == addr {
			return nd.State
		}
	}
	return ""
}

// generated is an endless stream of pseudo-random bytes.
type generated struct{ r *rand.ChaCha8 }

func (g *generated) Read(p []byte) (int, error) { return g.r.Read(p) }

// progressReader reports bytes read to fn.
type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}

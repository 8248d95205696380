package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/shoalfs/shoal/client"
)

// dial makes a client for the CLI: quiet, with the default timeouts.
func dial(addr string, opTimeout time.Duration) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Manager = addr
	cfg.OpTimeout = opTimeout
	cfg.RPCTimeout = min(cfg.RPCTimeout, opTimeout)
	c, err := client.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: --manager %q: %v", errUsage, addr, err)
	}
	return c, nil
}

func runStatus(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "status", "")
	asJSON := f.fs.Bool("json", false, "print JSON")
	return withClient(ctx, e, f, args, 0, 0, func(c *client.Client, _ []string) error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, st)
		}
		printStatus(e.stdout, st, time.Now())
		return nil
	})
}

func printStatus(w io.Writer, st client.StatusReport, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDR\tRACK\tSTATE\tCHUNKS\tUSED\tCAPACITY\tLAST HEARTBEAT")
	for _, n := range st.Nodes {
		rack := n.Rack
		if rack == "" {
			rack = "-"
		}
		hb := "never"
		if !n.LastHeartbeat.IsZero() {
			hb = now.Sub(n.LastHeartbeat).Round(100*time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.ID, n.Addr, rack, n.State, n.Chunks,
			formatSize(int64(n.UsedBytes)), formatSize(int64(n.CapacityBytes)), hb)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nfiles %d, chunks %d (replication %d): %d under-replicated, %d over-replicated, %d missing\n",
		st.Files, st.Chunks, st.Replication, st.UnderReplicated, st.OverReplicated, st.Missing)
	if st.SafeMode {
		fmt.Fprintln(w, "safe mode: waiting for chunkservers to report; not healing yet")
	}
	h := st.Healer
	fmt.Fprintf(w, "healer: %d queued, %d copying, %d done, %d failed, %d replicas deleted, %s/s\n",
		h.Queued, h.Copying, h.Done, h.Failed, h.Deleted, formatSize(int64(h.BytesPerSec)))
}

func runFsck(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "fsck", "[PATH]")
	asJSON := f.fs.Bool("json", false, "print JSON")
	return withClient(ctx, e, f, args, 0, 1, func(c *client.Client, a []string) error {
		path := "/"
		if len(a) == 1 {
			path = a[0]
		}
		r, err := c.Fsck(ctx, path)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := writeJSON(e.stdout, r); err != nil {
				return err
			}
		} else {
			printFsck(e.stdout, r)
		}
		if !r.OK() {
			return exitError(1)
		}
		return nil
	})
}

func printFsck(w io.Writer, r client.FsckReport) {
	if len(r.Problems) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATE\tCHUNK\tVERSION\tREPLICAS\tPATH")
		for _, p := range r.Problems {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d/%d\t%s\n", p.State, p.ChunkID, p.Version, p.LiveReplicas, p.Wanted, p.Path)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	verdict := "HEALTHY"
	if !r.OK() {
		verdict = "UNHEALTHY"
	}
	fmt.Fprintf(w, "%d files, %d chunks: %d healthy, %d under-replicated, %d over-replicated, %d missing, %d corrupt\n%s\n",
		r.Files, r.Chunks, r.Healthy, r.UnderReplicated, r.OverReplicated, r.Missing, r.Corrupt, verdict)
}

func runDecommission(ctx context.Context, e env, args []string) error {
	f := newCmdFlags(e, "decommission", "NODE")
	return withClient(ctx, e, f, args, 1, 1, func(c *client.Client, a []string) error {
		if err := c.Decommission(ctx, a[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s is draining; 'shoal status' shows it drained once its chunks are copied away\n", a[0])
		return nil
	})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

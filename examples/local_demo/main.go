// Command local_demo is the failure story in about a hundred lines of Go,
// for readers of the code: it starts a manager and four chunkservers in
// this process, writes a file through the client, kills a chunkserver
// that holds replicas, waits for the manager to declare it dead and for
// the healer to restore three replicas, and reads the file back.
//
//	go run ./examples/local_demo
//
// `shoal demo` tells the same story through a FUSE mount, with narration.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/shoalfs/shoal/client"
	"github.com/shoalfs/shoal/internal/cluster"
	"github.com/shoalfs/shoal/metadata"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "shoal-local-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// A manager (replication 3, 4 MiB chunks, dead after 2 s) and four
	// chunkservers, all on 127.0.0.1.
	cfg := cluster.DefaultConfig()
	cfg.Dir, cfg.ChunkServers = dir, 4
	cfg.Manager = metadata.DefaultConfig()
	cfg.Manager.ChunkSize = 4 << 20
	cfg.Manager.DeadAfter = 2 * time.Second
	cfg.Heartbeat = 200 * time.Millisecond
	c, err := cluster.Start(cfg)
	if err != nil {
		return err
	}
	defer c.Close()

	ccfg := client.DefaultConfig()
	ccfg.Manager = c.ManagerAddr()
	cl, err := client.New(ccfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := waitFor(ctx, "4 live chunkservers", func() bool { return live(ctx, cl) == 4 }); err != nil {
		return err
	}

	// Write 20 MiB: five chunks, each on three chunkservers.
	data := make([]byte, 20<<20)
	rand.Read(data)
	if _, err := cl.Put(ctx, bytes.NewReader(data), int64(len(data)), "/file.bin", nil); err != nil {
		return err
	}
	locs, err := cl.Locate(ctx, "/file.bin")
	if err != nil {
		return err
	}
	for _, l := range locs {
		fmt.Printf("chunk %d on %v\n", l.Index, l.Nodes)
	}

	// Kill the chunkserver holding the first replica of chunk 0.
	victim := -1
	for i := 0; i < c.Size(); i++ {
		if c.ChunkServerAddr(i) == locs[0].Nodes[0].Addr {
			victim = i
		}
	}
	fmt.Printf("killing chunkserver %d (%s)\n", victim, c.ChunkServerAddr(victim))
	if err := c.StopChunkServer(victim, true); err != nil {
		return err
	}

	// Reads fail over at once; healing starts when the node is declared dead.
	if err := checkFile(ctx, cl, data); err != nil {
		return err
	}
	start := time.Now()
	if err := waitFor(ctx, "a healthy fsck", func() bool {
		r, err := cl.Fsck(ctx, "/")
		return err == nil && r.OK() && live(ctx, cl) == 3
	}); err != nil {
		return err
	}
	fmt.Printf("healed %v after the kill: every chunk has 3 live replicas\n", time.Since(start).Round(time.Millisecond))
	return checkFile(ctx, cl, data)
}

func checkFile(ctx context.Context, cl *client.Client, want []byte) error {
	var got bytes.Buffer
	if _, err := cl.Get(ctx, "/file.bin", &got, nil); err != nil {
		return err
	}
	if !bytes.Equal(got.Bytes(), want) {
		return fmt.Errorf("the file read back differs")
	}
	fmt.Println("read back: every byte is there")
	return nil
}

func live(ctx context.Context, cl *client.Client) int {
	st, err := cl.Status(ctx)
	if err != nil {
		return 0
	}
	n := 0
	for _, nd := range st.Nodes {
		if nd.State == "live" {
			n++
		}
	}
	return n
}

func waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

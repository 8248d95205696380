// Command loopback mounts a go-fuse loopback of a local directory: the
// ceiling the benchmark compares the shoal mount with, the cost of FUSE
// itself over a local disk.
//
//	go run ./scripts/loopback SRC MNT
//
// It uses go-fuse's default options, except that FUSE passthrough is
// off: as root, go-fuse would otherwise hand the kernel the backing
// files, and reads and writes would bypass FUSE altogether, which no
// networked filesystem can do. It runs until SIGINT or SIGTERM, then
// unmounts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	debug := flag.Bool("debug", false, "print every FUSE request")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: loopback [-debug] SRC MNT")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *debug); err != nil {
		fmt.Fprintf(os.Stderr, "loopback: %v\n", err)
		os.Exit(1)
	}
}

func run(src, mnt string, debug bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := gofs.NewLoopbackRoot(src)
	if err != nil {
		return fmt.Errorf("source %s: %w", src, err)
	}
	var opts gofs.Options // go-fuse's defaults (1 s attribute and entry timeouts)
	opts.Debug = debug
	// go-fuse enables passthrough by itself when it can (as root);
	// switch the capability off so every read and write goes through
	// this process, as with any networked filesystem.
	opts.DisabledCapabilities = gofuse.CAP_PASSTHROUGH
	opts.DirectMount = os.Geteuid() == 0
	srv, err := gofs.Mount(mnt, root, &opts)
	if err != nil {
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	fmt.Fprintf(os.Stderr, "loopback: %s mounted at %s; Ctrl-C unmounts\n", src, mnt)

	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-ctx.Done():
	case <-done:
		return nil
	}
	if err := srv.Unmount(); err != nil {
		// Busy: detach lazily so nothing is left behind, then wait for
		// the last user to let go.
		if derr := syscall.Unmount(mnt, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("unmount %s: %v; lazy unmount: %w", mnt, err, derr)
		}
	}
	<-done
	return nil
}

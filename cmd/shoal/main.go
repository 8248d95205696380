// Command shoal runs the shoal daemons and talks to a shoal cluster.
//
// Each subcommand lives in its own file; they parse flags into the
// package's Config and call the package. main only sets up signals and
// the exit status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// env is what a subcommand may use of the outside world.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
}

type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"manager":      {"run the manager daemon", runManager},
		"chunkserver":  {"run a chunkserver daemon", runChunkServer},
		"mount":        {"mount the cluster at a directory (foreground)", runMount},
		"demo":         {"the local demo: a cluster, a mount, a chunkserver killed and healed", runDemo},
		"status":       {"nodes, capacity and chunk health", runStatus},
		"fsck":         {"check chunk health; exit 1 unless healthy", runFsck},
		"decommission": {"drain a chunkserver", runDecommission},
		"put":          {"copy a local file into the cluster", runPut},
		"get":          {"copy a file out of the cluster", runGet},
		"cat":          {"print files", runCat},
		"ls":           {"list a directory", runLs},
		"mkdir":        {"make directories", runMkdir},
		"rm":           {"remove files and directories", runRm},
		"mv":           {"rename", runMv},
	}
}

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

// exitError carries an exit status without a message (fsck unhealthy).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}
	err := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(exitCode(e, err))
}

func exitCode(e env, err error) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return int(ee)
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "shoal: %v\n", err)
		return 2
	default:
		fmt.Fprintf(e.stderr, "shoal: %v\n", err)
		return 1
	}
}

func run(ctx context.Context, e env, args []string) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout, cmds)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", errUsage)
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown command %q (run 'shoal help')", errUsage, args[0])
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: shoal COMMAND [flags] [args]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'shoal COMMAND -h' for a command's flags.")
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
)

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(e env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: shoal %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning a flag error into errUsage. Flags may come
// after arguments (`shoal fsck /dir --json`), as DESIGN.md writes them;
// "--" ends the flags.
func parse(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// managerFlag adds --manager, defaulting to $SHOAL_MANAGER.
func managerFlag(e env, fs *flag.FlagSet) *string {
	def := e.getenv("SHOAL_MANAGER")
	if def == "" {
		def = "127.0.0.1:9400"
	}
	return fs.String("manager", def, "manager address host:port (default from $SHOAL_MANAGER)")
}

// logFlags adds --log-level and --log-format and builds the root logger.
type logFlags struct{ level, format string }

func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	return l
}

func (l *logFlags) logger(w io.Writer) (*logrus.Logger, error) {
	lg := logrus.New()
	lg.SetOutput(w)
	lvl, err := logrus.ParseLevel(l.level)
	if err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, l.level)
	}
	lg.SetLevel(lvl)
	switch l.format {
	case "text":
		lg.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		lg.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, l.format)
	}
	return lg, nil
}

// sizeValue is a byte count flag that accepts 4096, 64KiB, 64MiB, 1GiB,
// 2TiB (and KB/MB/GB/TB as powers of ten).
type sizeValue int64

func (s *sizeValue) String() string { return formatSize(int64(*s)) }

func (s *sizeValue) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	}
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > (1<<62)/n) {
		return 0, fmt.Errorf("bad size %q: want a number with an optional unit, like 64MiB or 1GiB", v)
	}
	return n * mult, nil
}

func formatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

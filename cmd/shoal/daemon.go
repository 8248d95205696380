package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/sirupsen/logrus"
)

// daemon is a running unit of internal/cluster as the commands see it.
type daemon interface {
	Done() <-chan struct{}
	Err() error
	Stop() error
}

// serveDaemon runs d until ctx ends (SIGINT/SIGTERM) or d fails, serving
// the debug HTTP endpoint on httpAddr if it is set, then stops d cleanly.
func serveDaemon(ctx context.Context, log *logrus.Entry, d daemon, httpAddr string) error {
	if httpAddr != "" {
		stop, err := serveDebug(log, httpAddr)
		if err != nil {
			return errors.Join(err, d.Stop())
		}
		defer stop()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-d.Done():
	}
	err := errors.Join(d.Err(), d.Stop())
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}

// serveDebug serves the debug endpoint (/debug/pprof/) on addr until
// the returned stop is called.
func serveDebug(log *logrus.Entry, addr string) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	srv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
	log.WithField("http", lis.Addr().String()).Info("debug endpoint serving /debug/pprof/")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Warn("debug endpoint")
		}
	}()
	return func() {
		srv.Close()
		<-done
	}, nil
}

func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

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
	"golang.org/x/sync/errgroup"
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
	g, ctx := errgroup.WithContext(ctx)
	if httpAddr != "" {
		lis, err := net.Listen("tcp", httpAddr)
		if err != nil {
			d.Stop()
			return fmt.Errorf("--http %s: %w", httpAddr, err)
		}
		srv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		log.WithField("http", lis.Addr().String()).Info("debug endpoint serving /debug/pprof/")
		g.Go(func() error {
			if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	g.Go(func() error {
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
	})
	return g.Wait()
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

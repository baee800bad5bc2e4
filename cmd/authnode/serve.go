package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/avion/authnode/node"
)

// serve runs a node until SIGTERM or SIGINT. The first signal starts a
// graceful shutdown (readiness off, leave, drain, exit 0); a second one exits
// at once, as the default signal action is restored after the first.
func serve(args []string, stdout, stderr io.Writer) int {
	f := newServeFlags()
	f.fs.SetOutput(io.Discard) // errors are reported below, in one line
	f.fs.Usage = func() {}
	if err := f.parse(args, os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "authnode serve: %s (see authnode serve --help)\n", oneLine(err))
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: f.logLevel}))
	cfg, err := f.config(logger, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "authnode serve: %s\n", oneLine(err))
		return 2
	}
	openCtx, cancelOpen := context.WithTimeout(context.Background(), 30*time.Second)
	src, err := openSource(openCtx, f.auth.source)
	cancelOpen()
	if err != nil {
		fmt.Fprintf(stderr, "authnode serve: --source %s: %s\n", redactedSource(f.auth.source), oneLine(err))
		return 1
	}
	defer src.Close()
	cfg.Source, cfg.Version = src, version
	n, err := node.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "authnode serve: %s\n", oneLine(err))
		return 1
	}
	if cfg.Validator == nil {
		logger.Warn("no token issuer configured: token validation answers unavailable (set --jwt-issuer or --config)")
	}
	// The first signal restores the default signal action and only then
	// starts the shutdown, so a second signal, even one sent the moment the
	// shutdown begins, ends the process at once.
	signals, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	context.AfterFunc(signals, func() {
		stop()
		cancel()
	})
	logger.Info("starting", "version", version, "node", cfg.Name, "peer", n.PeerAddr(), "grpc", n.GRPCAddr(), "http", n.HTTPAddr(),
		"admin", n.AdminAddr(), "cache_mode", cfg.CacheMode, "source", redactedSource(f.auth.source))
	if err := n.Run(ctx); err != nil {
		logger.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

// redactedSource is the source for logs and errors: a sqlite:// path as
// it is, a postgres:// URL without its password (in the user part or as a
// password parameter, in any case), anything else not at all.
func redactedSource(source string) string {
	if strings.HasPrefix(source, "sqlite://") {
		return source
	}
	u, err := url.Parse(source)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "(source URL not shown)"
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

func (f *serveFlags) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: authnode serve [flags]\n\nRuns one node. Every flag --some-name may also be set with the\nenvironment variable AUTHNODE_SOME_NAME; a flag on the command line wins.\n\nFlags:\n")
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
	f.fs.SetOutput(io.Discard)
}

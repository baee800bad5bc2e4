package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/avion/authnode/metrics"
	"github.com/avion/authnode/transport"
	"github.com/avion/authnode/transport/peerpb"
)

// server is one listener's server as Run drives it.
type server interface {
	serve() error
	// stop drains until ctx ends, then stops hard.
	stop(ctx context.Context)
}

func (n *Node) servers() []server {
	peer := grpc.NewServer(grpc.ChainUnaryInterceptor(n.countPeerInvalidations))
	transport.RegisterPeer(peer, n.cache, n.auth.marks, n.pool.Relay)
	var opts []grpc.ServerOption
	httpLis := n.httpLis
	if n.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(n.cfg.TLS)))
		httpLis = tls.NewListener(httpLis, n.cfg.TLS)
	}
	if n.clientCertsRequired() { // first: a refused caller gets nothing, as over HTTP
		opts = append(opts, grpc.ChainUnaryInterceptor(requireClientCertGRPC))
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(transport.RequestIDs))
	public := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(public, n.health)
	guard := transport.Guard{Tokens: transport.NewTokens(n.cfg.APITokens...), Insecure: n.cfg.DevInsecureAPI}
	if guard.Insecure {
		n.log.Warn("mutating API calls are accepted without a token (development only)")
	}
	transport.RegisterAuthService(public, n, guard)
	reflection.Register(public)
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	admin := transport.AdminHTTP(n, transport.AdminConfig{Token: transport.NewTokens(n.cfg.AdminTokens...), Logger: n.log})
	return []server{
		grpcServer{peer, n.peerLis},
		grpcServer{public, n.grpcLis},
		newHTTPServer(n.httpHandler(guard), httpLis, 30*time.Second),
		newHTTPServer(admin, n.adminLis, 0), // pprof profiles stream for as long as asked
	}
}

// newHTTPServer serves h on lis. A request must arrive within 30 s (so a
// client trickling a body cannot hold a connection), and its answer be
// written within write (0: no limit).
func newHTTPServer(h http.Handler, lis net.Listener, write time.Duration) *httpServer {
	return &httpServer{srv: &http.Server{
		Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: write, IdleTimeout: 2 * time.Minute,
	}, lis: lis}
}

type grpcServer struct {
	s   *grpc.Server
	lis net.Listener
}

func (g grpcServer) serve() error { return g.s.Serve(g.lis) }

func (g grpcServer) stop(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		g.s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		g.s.Stop()
		<-done
	}
}

type httpServer struct {
	srv *http.Server
	lis net.Listener
}

func (h *httpServer) serve() error {
	if err := h.srv.Serve(h.lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (h *httpServer) stop(ctx context.Context) {
	if h.srv.Shutdown(ctx) != nil {
		_ = h.srv.Close()
	}
}

// shutdown runs the shutdown steps in order: readiness false, leave the
// cluster (others drop this node at once), keep answering peers for
// LeaveGrace while they swap rings, drain the servers, close the cache and
// peer connections, stop gossip.
func (n *Node) shutdown(servers []server) {
	n.stopping.Store(true)
	n.health.Shutdown()
	n.log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	if !n.cfg.SkipLeave {
		if err := n.cluster.Leave(n.cfg.ShutdownTimeout / 2); err != nil {
			n.log.Warn("leave", "err", err)
		}
		select {
		case <-time.After(n.cfg.LeaveGrace):
		case <-ctx.Done():
		}
	}
	for _, s := range servers {
		s.stop(ctx)
	}
	n.cache.Close()
	n.closeAuth()
	n.closeJWKS()
	n.pool.Close()
	if err := n.cluster.Shutdown(); err != nil {
		n.log.Warn("gossip shutdown", "err", err)
	}
	n.log.Info("stopped")
}

func (n *Node) httpHandler(guard transport.Guard) http.Handler {
	mux := http.NewServeMux()
	api := transport.PublicHTTP(n, guard)
	if n.clientCertsRequired() {
		api = requireClientCertHTTP(api)
	}
	mux.Handle("/v1/", api)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if reasons := n.notReady(); len(reasons) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reasons": reasons})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{Registry: n.metrics}))
	return mux
}

// notReady lists why the node is not ready; empty means ready. Ready means:
// not shutting down, joined (or no seeds), in its own ring, the ring
// unchanged for SettleTime, and (with a source) the source answered the
// read of the revocation watermarks.
func (n *Node) notReady() []string {
	var reasons []string
	if n.stopping.Load() {
		reasons = append(reasons, "shutting down")
	}
	if !n.cluster.Joined() {
		reasons = append(reasons, "not joined")
	}
	if !n.Current().Has(n.cfg.Name) {
		reasons = append(reasons, "not in its own ring")
	}
	if since := time.Since(time.Unix(0, n.changed.Load())); since < n.cfg.SettleTime {
		reasons = append(reasons, "ring changed "+since.Round(time.Millisecond).String()+" ago")
	}
	if !n.auth.marks.Loaded() {
		reasons = append(reasons, "revocation watermarks not loaded from the source")
	}
	return reasons
}

// Ready reports whether the node is ready to serve (see notReady).
func (n *Node) Ready() bool { return len(n.notReady()) == 0 }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// countPeerInvalidations counts the invalidations peers deliver by direct
// call.
func (n *Node) countPeerInvalidations(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err == nil && info.FullMethod == peerpb.Peer_Invalidate_FullMethodName {
		n.obs.Invalidated(metrics.ChannelPeer, 1)
	}
	return resp, err
}

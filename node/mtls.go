package node

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// clientCertsRequired reports whether the public API needs a verified
// client certificate: TLS is on with client CAs. The TLS handshake itself
// only verifies certificates that are given, so probes and Prometheus
// (/healthz, /readyz, /metrics, the gRPC health service) work without one.
func (n *Node) clientCertsRequired() bool {
	return n.cfg.TLS != nil && n.cfg.TLS.ClientCAs != nil
}

// verified reports whether a connection's TLS state holds a verified
// client certificate.
func verified(st *tls.ConnectionState) bool {
	return st != nil && len(st.VerifiedChains) > 0
}

// requireClientCertHTTP refuses API requests without a verified client
// certificate.
func requireClientCertHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !verified(r.TLS) {
			writeJSON(w, http.StatusUnauthorized, map[string]map[string]string{
				"error": {"code": "client_certificate_required", "message": "this API needs a client certificate"},
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireClientCertGRPC refuses calls to the auth service without a
// verified client certificate; health and reflection stay open.
func requireClientCertGRPC(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, "/avion.auth.v1.AuthService/") {
		p, _ := peer.FromContext(ctx)
		var st *tls.ConnectionState
		if p != nil {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				st = &ti.State
			}
		}
		if !verified(st) {
			return nil, status.Error(codes.Unauthenticated, "this API needs a client certificate")
		}
	}
	return handler(ctx, req)
}

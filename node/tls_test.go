package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/transport/authpb"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return testCA{cert: cert, key: key, pool: pool}
}

// issue returns a leaf certificate for 127.0.0.1 usable by servers and
// clients.
func (ca testCA) issue(t *testing.T, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestPublicListenersServeMutualTLS: with a client CA configured, the
// public HTTP and gRPC listeners speak TLS, the API refuses clients without
// a certificate signed by the CA, and probes and the gRPC health service
// answer without one.
func TestPublicListenersServeMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	serverCfg := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, 2)}, ClientCAs: ca.pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	src := openStore(t, clusterPolicy)
	nodes := nodetest.Start(t, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.TLS, cfg.Source = serverCfg, src }})
	n := nodes[0]
	withCert := &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.issue(t, 3)}, MinVersion: tls.VersionTLS12}
	without := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
	other := newTestCA(t) // a certificate from a CA the node does not trust
	foreign := &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{other.issue(t, 4)}, MinVersion: tls.VersionTLS12}

	status := func(cfg *tls.Config, method, path, body string) int {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		defer client.CloseIdleConnections()
		req, err := http.NewRequest(method, "https://"+n.HTTPAddr()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	authorize := `{"user_id":"alice","resource":"posts:1","action":"write"}`
	for _, c := range []struct {
		name        string
		cfg         *tls.Config
		health, api int
	}{
		{"with a client certificate", withCert, 200, 200},
		{"without one", without, 200, 401},
	} {
		if got := status(c.cfg, "GET", "/healthz", ""); got != c.health {
			t.Errorf("%s: /healthz %d, want %d", c.name, got, c.health)
		}
		if got := status(c.cfg, "POST", "/v1/authorize", authorize); got != c.api {
			t.Errorf("%s: /v1/authorize %d, want %d", c.name, got, c.api)
		}
	}
	if got := status(foreign, "GET", "/healthz", ""); got != 0 {
		t.Errorf("a certificate from an untrusted CA was accepted: %d", got)
	}

	call := func(cfg *tls.Config, api bool) error {
		conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if api {
			_, err = authpb.NewAuthServiceClient(conn).Authorize(ctx, &authpb.AuthorizeRequest{UserId: "alice", Resource: "posts:1", Action: "write"})
			return err
		}
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call(withCert, true); err != nil {
		t.Errorf("gRPC API with a client certificate: %v", err)
	}
	if err := call(without, false); err != nil {
		t.Errorf("gRPC health without a client certificate: %v", err)
	}
	if err := call(without, true); grpcstatus.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC API without a client certificate: %v, want Unauthenticated", err)
	}
}

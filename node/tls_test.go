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
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
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
// public HTTP and gRPC listeners speak TLS and refuse clients without a
// certificate signed by it.
func TestPublicListenersServeMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	serverCfg := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, 2)}, ClientCAs: ca.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	nodes := nodetest.Start(t, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.TLS = serverCfg }})
	n := nodes[0]
	withCert := &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.issue(t, 3)}, MinVersion: tls.VersionTLS12}
	without := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}

	get := func(cfg *tls.Config) error {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		defer client.CloseIdleConnections()
		resp, err := client.Get("https://" + n.HTTPAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(withCert); err != nil {
		t.Fatalf("HTTPS with a client certificate: %v", err)
	}
	if get(without) == nil {
		t.Fatal("HTTPS without a client certificate was accepted")
	}

	check := func(cfg *tls.Config) error {
		conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(withCert); err != nil {
		t.Fatalf("gRPC over TLS with a client certificate: %v", err)
	}
	if check(without) == nil {
		t.Fatal("gRPC without a client certificate was accepted")
	}
}

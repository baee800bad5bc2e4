package node_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
)

// BenchmarkHTTPValidate: one POST /v1/tokens/validate round trip over
// loopback to a real node, the token cached; against BenchmarkHTTPBare, a
// bare handler answering a fixed body on the same machine (the floor).
func BenchmarkHTTPValidate(b *testing.B) {
	s := newSigner(b)
	src := openStore(b, clusterPolicy)
	v := s.validator(b)
	nodes := nodetest.Start(b, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.Source, cfg.Validator = src, v }})
	waitReady(b, nodes[0]) // no token validates before the watermarks are read
	body := `{"token":"` + s.token(b, "alice", time.Now()) + `"}`
	benchPost(b, "http://"+nodes[0].HTTPAddr()+"/v1/tokens/validate", body, `"valid":true`)
}

// BenchmarkHTTPBare is the floor for BenchmarkHTTPValidate: net/http on
// loopback, a handler that reads the body and writes a fixed JSON answer.
func BenchmarkHTTPBare(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"valid":true,"user_id":"alice"}`)
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	s := newSigner(b)
	body := `{"token":"` + s.token(b, "alice", time.Now()) + `"}`
	benchPost(b, "http://"+lis.Addr().String()+"/", body, `"valid":true`)
}

// benchPost posts body to url b.N times on one keep-alive connection and
// reports p50 and p99.
func benchPost(b *testing.B, url, body, want string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	b.Cleanup(client.CloseIdleConnections)
	post := func() {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(got, []byte(want)) {
			b.Fatalf("answer %s", got)
		}
	}
	post() // warm: the connection, and the validation cache
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		post()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkNodeCalls: the node's API methods in process (no transport),
// answered from memory, with their metrics: what a call costs inside the
// node.
func BenchmarkNodeCalls(b *testing.B) {
	s := newSigner(b)
	src := openStore(b, clusterPolicy)
	v := s.validator(b)
	n := nodetest.Start(b, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.Source, cfg.Validator = src, v }})[0]
	ctx := context.Background()
	tok := s.token(b, "alice", time.Now())
	waitReady(b, n)
	b.Run("ValidateToken", func(b *testing.B) {
		if _, err := n.ValidateToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = n.ValidateToken(ctx, tok)
		}
	})
	b.Run("Authorize", func(b *testing.B) {
		if _, err := n.Authorize(ctx, "alice", "posts:1", "write", nil); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = n.Authorize(ctx, "alice", "posts:1", "write", nil)
		}
	})
}

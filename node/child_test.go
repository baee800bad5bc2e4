package node_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
)

// childEnv marks a test binary re-executed to run one node in its own
// process, for benchmarks across processes.
const childEnv = "AUTHNODE_TEST_CHILD_NODE"

// runChild runs the node of a child process: it prints its gossip address,
// serves until stdin closes, then shuts down gracefully.
func runChild(name string) int {
	cfg := node.LocalConfig(name)
	cfg.Groups = []node.GroupSpec{{Name: "g", Loader: newSource(), NoHotCopies: true}}
	n, err := node.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Started()
	fmt.Println(n.GossipAddr(), n.GRPCAddr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startChild re-executes this test binary as a node named name in its own
// process and returns its gossip and public gRPC addresses.
func startChild(tb testing.TB, name string) (gossip, public string) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				tb.Errorf("child node: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			tb.Errorf("child node did not stop after its stdin closed; killed: %v", <-exited)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("child node: %v", err)
	}
	gossip, public, _ = strings.Cut(strings.TrimSpace(line), " ")
	return gossip, public
}

// BenchmarkForwardGRPCAcrossProcesses: the owner runs in another process; one
// caller (latency, p50/p99) and 32 callers (throughput).
func BenchmarkForwardGRPCAcrossProcesses(b *testing.B) {
	seed, public := startChild(b, "child-0")
	cfg := node.LocalConfig("parent")
	cfg.Logger = nodetest.Logger(b)
	cfg.Join = []string{seed}
	cfg.PeerTimeout = time.Second
	cfg.Groups = []node.GroupSpec{{Name: "g", Loader: newSource(), NoHotCopies: true}}
	local := nodetest.Run(b, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for local.Current().Len() != 2 {
		if time.Now().After(deadline) {
			b.Fatal("the two processes did not form one ring")
		}
		time.Sleep(10 * time.Millisecond)
	}
	g, keys := warmRemote(b, local)
	ctx := context.Background()
	b.Run("callers=1", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		for i := range b.N {
			start := time.Now()
			if _, err := g.Get(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat)
	})
	b.Run("callers=32", func(b *testing.B) {
		parallelForwards(b, g, keys)
	})
	b.Run("bare-grpc/callers=1", func(b *testing.B) { bareUnary(b, public, 1) })
	b.Run("bare-grpc/callers=32", func(b *testing.B) { bareUnary(b, public, 32) })
	if s := g.Stats(); s.DegradedLoads != 0 {
		b.Fatalf("%d degraded loads", s.DegradedLoads)
	}
}

// bareUnary measures plain gRPC unary calls (the health check) to the same
// process, as the baseline a forwarded get is compared with.
func bareUnary(b *testing.B, addr string, callers int) {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := healthpb.NewHealthClient(conn)
	ctx := context.Background()
	if callers == 1 {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			start := time.Now()
			if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat)
		return
	}
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

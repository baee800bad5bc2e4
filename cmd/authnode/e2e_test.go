package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles authnode once for the end-to-end tests.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "authnode-e2e")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "authnode")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a running authnode binary.
type proc struct {
	cmd    *exec.Cmd
	http   string
	gossip string
	log    *syncWriter
	done   chan error
}

func startProc(t *testing.T, name string, join string, extra ...string) *proc {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{
		http:   fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		gossip: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		log:    &syncWriter{},
		done:   make(chan error, 1),
	}
	// Later flags win, so extra may override the source.
	args := append([]string{"serve", "--node-name", name, "--gossip-addr", p.gossip,
		"--peer-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--http-addr", p.http, "--admin-addr", "127.0.0.1:0",
		"--source", "sqlite://" + filepath.Join(t.TempDir(), "authnode.db")}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "AUTHNODE_JOIN="+join)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		p.done <- <-p.done // wait for the exit; leave the result for others
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log.String())
		}
	})
	return p
}

// syncWriter collects a process's output; safe to read while it is written.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeTwoProcesses runs two real authnode processes: the second joins
// the first through AUTHNODE_JOIN, both become ready with a two-member ring,
// and SIGTERM stops each gracefully with exit status 0.
func TestServeTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	a := startProc(t, "a", "")
	b := startProc(t, "b", a.gossip)
	for _, p := range []*proc{a, b} {
		waitFor(t, "a ready two-member node at "+p.http, func() bool {
			code, _ := httpGet("http://" + p.http + "/readyz")
			_, metrics := httpGet("http://" + p.http + "/metrics")
			return code == http.StatusOK && strings.Contains(metrics, "authnode_ring_members 2")
		})
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.done:
		b.done <- err
		if err != nil {
			t.Fatalf("b exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("b did not exit after SIGTERM")
	}
	waitFor(t, "a to drop b", func() bool {
		_, metrics := httpGet("http://" + a.http + "/metrics")
		return strings.Contains(metrics, "authnode_ring_members 1")
	})
	if !strings.Contains(b.log.String(), `"msg":"stopped"`) {
		t.Fatalf("b's log lacks the shutdown record:\n%s", b.log.String())
	}
}

// TestSecondSignalExitsAtOnce: after the first SIGTERM starts a graceful
// shutdown, a second one ends the process at once by the signal's default
// action instead of waiting for the shutdown to finish.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	p := startProc(t, "solo", "")
	waitFor(t, "the node to serve", func() bool {
		code, _ := httpGet("http://" + p.http + "/healthz")
		return code == http.StatusOK
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the graceful shutdown to begin", func() bool {
		return strings.Contains(p.log.String(), `"msg":"shutting down"`)
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("the process was already gone: the test could not tell the two signals apart: %v", err)
	}
	err := <-p.done
	p.done <- err
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("after a second SIGTERM the process exited with %v, want killed by the signal", err)
	}
}

// TestStoppedProcessFlushes: a real process stopped with SIGSTOP for longer
// than --max-pause flushes its cache when SIGCONT resumes it, and logs why.
func TestStoppedProcessFlushes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	p := startProc(t, "sleeper", "", "--max-pause", "200ms")
	waitFor(t, "the node to serve", func() bool {
		code, _ := httpGet("http://" + p.http + "/healthz")
		return code == http.StatusOK
	})
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the pause under test: there is nothing to poll while the process is stopped
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flush after the pause", func() bool {
		log := p.log.String()
		return strings.Contains(log, `"msg":"cache flushed"`) && strings.Contains(log, `"reason":"process paused for`)
	})
	if strings.Count(p.log.String(), `"reason":"process paused for`) != 1 {
		t.Fatalf("expected exactly one flush after the pause:\n%s", p.log.String())
	}
}

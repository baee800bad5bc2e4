package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkMetrics scrapes url and checks the exposition with `promtool check
// metrics` (Debian's prometheus package; make deps installs it), failing
// on any problem it reports. It returns the scrape.
func checkMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	for _, want := range []string{"auth_cache_hits_total{", "authnode_build_info{version=", "auth_cache_latency_seconds_bucket{", "authnode_cluster_members{", "go_goroutines", "process_resident_memory_bytes"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (make deps)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	return string(body)
}

// TestMembershipInMetricsAndLogs runs three real processes: when one is
// killed, the survivors count it as failed in authnode_cluster_members and
// log "member failed"; when another stops gracefully, it is counted as
// left and logged "member left".
func TestMembershipInMetricsAndLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	a := startProc(t, "a", "")
	b := startProc(t, "b", a.gossip)
	c := startProc(t, "c", a.gossip)
	members := func(p *proc, state string, n int) func() bool {
		return func() bool {
			_, m := httpGet("http://" + p.http + "/metrics")
			return strings.Contains(m, fmt.Sprintf("authnode_cluster_members{state=%q} %d\n", state, n))
		}
	}
	waitFor(t, "three alive members", members(a, "alive", 3))

	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to count c as failed", members(a, "failed", 1))
	waitFor(t, "b to count c as failed", members(b, "failed", 1))

	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to count b as left", members(a, "left", 1))
	if !members(a, "alive", 1)() || !members(a, "failed", 1)() {
		_, m := httpGet("http://" + a.http + "/metrics")
		t.Fatalf("a's members after c failed and b left:\n%s", grepLines(m, "authnode_cluster_members"))
	}
	logged := map[string]string{} // member → state, from a's membership lines
	for _, l := range procLogLines(a) {
		if l.Msg == "member "+l.State && l.Member != "" {
			logged[l.Member] = l.State
		}
	}
	if logged["c"] != "failed" || logged["b"] != "left" {
		t.Errorf("a logged the departures as %v, want c failed and b left", logged)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
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

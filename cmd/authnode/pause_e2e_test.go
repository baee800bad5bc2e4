package main

import (
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStoppedNodeMissesNoRevocation: two real nodes share a SQLite source.
// While node b is stopped (SIGSTOP), alice loses her role and her tokens
// are revoked through node a, so every push to b is lost; the change feed
// and the periodic watermark read are made too slow to help. Once b runs
// again it never accepts the revoked token and never allows from the old
// policy (TestPausedNodeMissesNoRevocation in node pins the mechanism: a
// flush and a fresh read of the watermarks before the first answer).
func TestStoppedNodeMissesNoRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	dir := t.TempDir()
	source := "sqlite://" + filepath.Join(dir, "authnode.db")
	if code, out, errOut := runBin(t, binEnv(), "policy", "import", "--source", source, writeTestFile(t, dir, "policy.yaml", e2ePolicy)); code != 0 {
		t.Fatalf("policy import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	devDir := filepath.Join(dir, "dev")
	token := binMint(t, devDir, "alice")
	apiToken := randomHex32(t)
	common := []string{"--source", source, "--jwks-file", filepath.Join(devDir, devJWKSFile), "--jwt-issuer", "authnode-dev",
		"--jwt-audience", "authnode-dev", "--api-token-file", writeTestFile(t, dir, "api-tokens", apiToken+"\n"),
		"--change-poll", "1h", "--watermark-sync", "1h", "--max-pause", "500ms"}
	a := startProc(t, "a", "", common...)
	aAddrs := waitStarted(t, a)
	b := startProc(t, "b", a.gossip, common...)
	bAddrs := waitStarted(t, b)
	waitProcReady(t, a)
	waitProcReady(t, b)
	aURL, bURL := "http://"+aAddrs.HTTP, "http://"+bAddrs.HTTP
	authorize := map[string]string{"user_id": "alice", "resource": "posts:1", "action": "write"}
	for _, u := range []string{aURL, bURL} {
		if code, r := e2eCall(t, http.MethodPost, u+"/v1/authorize", "", authorize); code != http.StatusOK || !r.Allowed {
			t.Fatalf("%s: authorize before: %d %+v", u, code, r)
		}
		if code, r := e2eCall(t, http.MethodPost, u+"/v1/tokens/validate", "", map[string]string{"token": token}); code != http.StatusOK || !r.Valid {
			t.Fatalf("%s: validate before: %d %+v", u, code, r)
		}
	}

	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if code, out, errOut := runBin(t, binEnv(), "policy", "import", "--source", source,
		writeTestFile(t, dir, "change.yaml", "users:\n  - {id: alice, roles: []}\n")); code != 0 {
		t.Fatalf("policy change: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, r := e2eCall(t, http.MethodPost, aURL+"/v1/users/alice/invalidate", apiToken, nil); code != http.StatusOK {
		t.Fatalf("invalidate: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodPost, aURL+"/v1/tokens/revoke", apiToken, map[string]string{"user_id": "alice"}); code != http.StatusOK {
		t.Fatalf("revoke: %d %+v", code, r)
	}
	// The pause must outlast --max-pause; there is nothing to poll while
	// the process is stopped.
	time.Sleep(time.Second - time.Since(stopped))
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	if code, r := e2eCall(t, http.MethodPost, bURL+"/v1/authorize", "", authorize); code != http.StatusOK || r.Allowed {
		t.Fatalf("after the pause b answered from the old policy: %d %+v", code, r)
	}
	waitFor(t, "b to reject the revoked token", func() bool {
		code, r := e2eCall(t, http.MethodPost, bURL+"/v1/tokens/validate", "", map[string]string{"token": token})
		switch {
		case code == http.StatusOK || r.Valid:
			t.Fatalf("after the pause b accepted a revoked token: %d %+v", code, r)
		case code == http.StatusServiceUnavailable: // re-reading the watermarks
			return false
		case code != http.StatusUnauthorized || r.Error.Code != "revoked":
			t.Fatalf("after the pause: %d %+v", code, r)
		}
		return true
	})
}

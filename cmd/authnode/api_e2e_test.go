package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/avion/authnode/transport/authpb"
)

// The policy of the end-to-end tests: alice may write any post and owns
// one API key.
const (
	e2eAPIKey = "ak_e2e_secret_key_value_123456"
	e2ePolicy = `roles:
  - name: editor
    permissions:
      - {resource: "posts:*", action: write}
users:
  - {id: alice, roles: [editor]}
api_keys:
  - {key: "` + e2eAPIKey + `", user: alice, name: e2e, scopes: [read]}
`
)

// binEnv is the test's environment without any variable that configures
// authnode, so a setting of the machine running the tests cannot change
// what a test checks.
func binEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHNODE_") && !strings.HasPrefix(kv, "ENABLE_AUTH_CACHE=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBin runs the authnode binary to completion (at most a minute) and
// returns its exit code, stdout and stderr.
func runBin(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("authnode %q did not exit within a minute; stderr:\n%s", args, errOut.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &exit) && exit.Exited():
		return exit.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("authnode %q: %v; stderr:\n%s", args, err, errOut.String())
	return 0, "", ""
}

// binMint mints a development token for sub with the key in dataDir.
func binMint(t *testing.T, dataDir, sub string) string {
	t.Helper()
	code, out, errOut := runBin(t, binEnv(), "token", "mint", "--dev", "--data-dir", dataDir, "--sub", sub)
	token := strings.TrimSpace(out)
	if code != 0 || strings.Count(token, ".") != 2 {
		t.Fatalf("token mint: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	return token
}

// randomHex32 returns 32 random hex characters.
func randomHex32(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// procLogLine is one JSON line of a node's log, with the fields the tests read.
type procLogLine struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	GRPC   string `json:"grpc"`
	HTTP   string `json:"http"`
	Admin  string `json:"admin"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	// RequestID ties an admin or mutating call's lines together.
	RequestID string `json:"request_id"`
	// Member and State describe a membership change.
	Member string `json:"member"`
	State  string `json:"state"`
}

// procLogLines returns the JSON lines of p's log; other lines are skipped.
func procLogLines(p *proc) []procLogLine {
	var lines []procLogLine
	for s := range strings.Lines(p.log.String()) {
		var l procLogLine
		if json.Unmarshal([]byte(s), &l) == nil {
			lines = append(lines, l)
		}
	}
	return lines
}

// failIfExited fails the test when p has exited already.
func failIfExited(t *testing.T, p *proc) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("the node exited: %v", err)
	default:
	}
}

// waitStarted waits for p's "starting" line and returns it: the addresses the
// node listens on.
func waitStarted(t *testing.T, p *proc) procLogLine {
	t.Helper()
	var start procLogLine
	waitFor(t, "the starting log line", func() bool {
		failIfExited(t, p)
		for _, l := range procLogLines(p) {
			if l.Msg == "starting" && l.GRPC != "" && l.HTTP != "" && l.Admin != "" {
				start = l
				return true
			}
		}
		return false
	})
	if start.HTTP != p.http {
		t.Fatalf("the node serves HTTP on %s, want %s", start.HTTP, p.http)
	}
	return start
}

// waitProcReady waits until p's /readyz answers 200.
func waitProcReady(t *testing.T, p *proc) {
	t.Helper()
	waitFor(t, "the node at "+p.http+" to be ready", func() bool {
		failIfExited(t, p)
		code, _ := httpGet("http://" + p.http + "/readyz")
		return code == http.StatusOK
	})
}

// stopProc sends SIGTERM to p and waits for it to exit with status 0.
func stopProc(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("the node exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not exit within 30 s of SIGTERM")
	}
}

var e2eClient = &http.Client{Timeout: 10 * time.Second}

// e2eAnswer is what the tests read of a JSON answer.
type e2eAnswer struct {
	Valid     bool            `json:"valid"`
	Allowed   bool            `json:"allowed"`
	UserID    string          `json:"user_id"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
	Watermark string          `json:"watermark"`
	Node      string          `json:"node"`
	Error     struct {
		Code string `json:"code"`
	} `json:"error"`
}

// e2eCall sends method url with body (JSON-encoded unless nil) and bearer
// ("" for none), and returns the status and the decoded answer.
func e2eCall(t *testing.T, method, url, bearer string, body any) (int, e2eAnswer) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	var out e2eAnswer
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// TestServeAuthEndToEnd runs one real node on a policy imported with
// `authnode policy import` and tokens minted with `authnode token mint`,
// and drives every public operation over HTTP and gRPC: token validation
// and revocation, authorization, API keys, sessions behind the API token,
// the admin listener, gRPC health. After SIGTERM its log holds none of the
// secrets it handled.
func TestServeAuthEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	dir := t.TempDir()
	source := "sqlite://" + filepath.Join(dir, "authnode.db")
	policyFile := writeTestFile(t, dir, "policy.yaml", e2ePolicy)
	if code, out, errOut := runBin(t, binEnv(), "policy", "import", "--source", source, policyFile); code != 0 {
		t.Fatalf("policy import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	devDir := filepath.Join(dir, "dev")
	oldToken := binMint(t, devDir, "alice")
	apiToken := randomHex32(t)
	apiTokenFile := writeTestFile(t, dir, "api-tokens", "# mutations\n"+apiToken+"\n")
	adminToken := randomHex32(t)
	adminTokenFile := writeTestFile(t, dir, "admin-token", adminToken+"\n")
	sessionSecret := "session-secret-" + randomHex32(t)

	p := startProc(t, "api", "", "--source", source, "--jwks-file", filepath.Join(devDir, devJWKSFile),
		"--jwt-issuer", "authnode-dev", "--jwt-audience", "authnode-dev", "--api-token-file", apiTokenFile,
		"--admin-token-file", adminTokenFile, "--log-level", "DEBUG")
	addrs := waitStarted(t, p)
	waitProcReady(t, p)
	base := "http://" + addrs.HTTP

	// Tokens, authorization and API keys over HTTP.
	if code, r := e2eCall(t, http.MethodPost, base+"/v1/tokens/validate", "", map[string]string{"token": oldToken}); code != http.StatusOK || !r.Valid || r.UserID != "alice" {
		t.Fatalf("validate: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodPost, base+"/v1/authorize", "", map[string]string{"user_id": "alice", "resource": "posts:1", "action": "write"}); code != http.StatusOK || !r.Allowed {
		t.Fatalf("authorize alice posts:1 write: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodPost, base+"/v1/authorize", "", map[string]string{"user_id": "alice", "resource": "posts:1", "action": "delete"}); code != http.StatusOK || r.Allowed {
		t.Fatalf("authorize alice posts:1 delete (a deny): %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodPost, base+"/v1/apikeys/verify", "", map[string]string{"api_key": e2eAPIKey}); code != http.StatusOK || !r.Valid || r.UserID != "alice" || r.Name != "e2e" {
		t.Fatalf("verify API key: %d %+v", code, r)
	}

	// Sessions: a PUT needs the API token.
	session := map[string]any{"data": map[string]string{"secret": sessionSecret}, "ttl_seconds": 600}
	if code, r := e2eCall(t, http.MethodPut, base+"/v1/sessions/alice", "", session); code != http.StatusUnauthorized || r.Error.Code != "unauthenticated" {
		t.Fatalf("PUT session without a token: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodPut, base+"/v1/sessions/alice", randomHex32(t), session); code != http.StatusUnauthorized || r.Error.Code != "unauthenticated" {
		t.Fatalf("PUT session with a wrong token: %d %+v", code, r)
	}
	if code, _ := e2eCall(t, http.MethodGet, base+"/v1/sessions/alice", "", nil); code != http.StatusNotFound {
		t.Fatalf("a refused PUT stored a session: GET answered %d", code)
	}
	if code, r := e2eCall(t, http.MethodPut, base+"/v1/sessions/alice", apiToken, session); code != http.StatusOK || r.UserID != "alice" {
		t.Fatalf("PUT session with the API token: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodGet, base+"/v1/sessions/alice", "", nil); code != http.StatusOK || !strings.Contains(string(r.Data), sessionSecret) {
		t.Fatalf("GET session: %d %+v", code, r)
	}

	// Revocation needs the API token too; afterwards the old token is revoked.
	if code, r := e2eCall(t, http.MethodPost, base+"/v1/tokens/revoke", "", map[string]string{"user_id": "alice"}); code != http.StatusUnauthorized {
		t.Fatalf("revoke without a token: %d %+v", code, r)
	}
	code, rev := e2eCall(t, http.MethodPost, base+"/v1/tokens/revoke", apiToken, map[string]string{"user_id": "alice"})
	if code != http.StatusOK {
		t.Fatalf("revoke: %d %+v", code, rev)
	}
	watermark, err := time.Parse(time.RFC3339Nano, rev.Watermark)
	if err != nil {
		t.Fatalf("revoke: watermark %q: %v", rev.Watermark, err)
	}
	if code, r := e2eCall(t, http.MethodPost, base+"/v1/tokens/validate", "", map[string]string{"token": oldToken}); code != http.StatusUnauthorized || r.Valid || r.Error.Code != "revoked" {
		t.Fatalf("validate a revoked token: %d %+v", code, r)
	}

	// The admin API needs the admin token.
	admin := "http://" + addrs.Admin + "/admin"
	if code, _ := e2eCall(t, http.MethodGet, admin+"/cluster", randomHex32(t), nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /admin/cluster with a wrong token: %d", code)
	}
	if code, r := e2eCall(t, http.MethodGet, admin+"/cluster", adminToken, nil); code != http.StatusOK || r.Node != "api" {
		t.Fatalf("GET /admin/cluster: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodPost, admin+"/cache/warmup", adminToken, map[string]any{"user_ids": []string{"alice"}}); code != http.StatusOK {
		t.Fatalf("POST /admin/cache/warmup: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodDelete, admin+"/cache/user/alice", adminToken, nil); code != http.StatusOK {
		t.Fatalf("DELETE /admin/cache/user/alice: %d %+v", code, r)
	}

	// gRPC. A token's iat is whole seconds and one issued before the
	// watermark is revoked, so the new token is minted once the second
	// after the watermark has begun.
	waitFor(t, "the second after the revocation", func() bool {
		return !time.Now().Truncate(time.Second).Before(watermark)
	})
	newToken := binMint(t, devDir, "alice")
	conn, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := authpb.NewAuthServiceClient(conn)
	if v, err := client.ValidateToken(ctx, &authpb.ValidateTokenRequest{Token: newToken}); err != nil || !v.GetValid() || v.GetUserId() != "alice" {
		t.Fatalf("gRPC ValidateToken (new token): %v, %v", v, err)
	}
	if v, err := client.ValidateToken(ctx, &authpb.ValidateTokenRequest{Token: oldToken}); err != nil || v.GetValid() || v.GetError().GetCode() != "revoked" {
		t.Fatalf("gRPC ValidateToken (revoked token): %v, %v", v, err)
	}
	if a, err := client.Authorize(ctx, &authpb.AuthorizeRequest{UserId: "alice", Resource: "posts:1", Action: "write"}); err != nil || !a.GetAllowed() {
		t.Fatalf("gRPC Authorize: %v, %v", a, err)
	}
	if h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v, %v", h, err)
	}

	scrape := checkMetrics(t, "http://"+addrs.HTTP+"/metrics")
	stopProc(t, p)
	log := p.log.String()
	secrets := map[string]string{
		"the first token": oldToken, "the second token": newToken, "the API key": e2eAPIKey,
		"the API token": apiToken, "the session secret": sessionSecret, "the admin token": adminToken,
	}
	for what, tok := range map[string]string{"the first token's signature": oldToken, "the second token's signature": newToken} {
		secrets[what] = tok[strings.LastIndex(tok, ".")+1:]
	}
	for what, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the node's log holds %s", what)
		}
		if strings.Contains(scrape, s) {
			t.Errorf("the node's metrics hold %s", what)
		}
	}
	if strings.Contains(scrape, "alice") {
		t.Error("a user id is a label value in the node's metrics")
	}
	audited := false
	ids := map[string][]string{} // request id → messages
	for _, l := range procLogLines(p) {
		audited = audited || (l.Msg == "admin" && l.Method == http.MethodGet && l.Path == "/admin/cluster" && l.Status == http.StatusOK)
		if l.RequestID != "" {
			ids[l.RequestID] = append(ids[l.RequestID], l.Msg)
		}
	}
	if !audited {
		t.Errorf("the log has no audit line for GET /admin/cluster, so the search for secrets proves little:\n%s", log)
	}
	// The admin drop is one request: its audit line and the node's line
	// share the request id. The public revocation has one too.
	var dropped, revoked bool
	for _, msgs := range ids {
		dropped = dropped || slices.Equal(msgs, []string{"user invalidated", "admin"})
		revoked = revoked || slices.Equal(msgs, []string{"tokens revoked"})
	}
	if !dropped || !revoked {
		t.Errorf("log lines by request id %v: want the admin drop's two lines under one id and the revocation's own", ids)
	}
}

// TestServeRefusesMutationsWithoutToken: a node with neither API tokens nor
// --dev-insecure-api refuses every mutation with 403 mutations_disabled; with
// --dev-insecure-api it accepts them and says so in its log.
func TestServeRefusesMutationsWithoutToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	locked := startProc(t, "locked", "")
	open := startProc(t, "open", "", "--dev-insecure-api")
	session := map[string]any{"data": map[string]string{"k": "v"}, "ttl_seconds": 60}
	const warning = "mutating API calls are accepted without a token"

	waitProcReady(t, locked)
	base := "http://" + locked.http
	for _, bearer := range []string{"", randomHex32(t)} {
		if code, r := e2eCall(t, http.MethodPut, base+"/v1/sessions/x", bearer, session); code != http.StatusForbidden || r.Error.Code != "mutations_disabled" {
			t.Errorf("PUT session (bearer %t) on a node without API tokens: %d %+v", bearer != "", code, r)
		}
	}
	if code, r := e2eCall(t, http.MethodPost, base+"/v1/tokens/revoke", "", map[string]string{"user_id": "x"}); code != http.StatusForbidden || r.Error.Code != "mutations_disabled" {
		t.Errorf("revoke on a node without API tokens: %d %+v", code, r)
	}
	if code, _ := e2eCall(t, http.MethodGet, base+"/v1/sessions/x", "", nil); code != http.StatusNotFound {
		t.Errorf("a refused PUT stored a session: GET answered %d", code)
	}
	if strings.Contains(locked.log.String(), warning) {
		t.Errorf("a node without --dev-insecure-api warns that it accepts mutations")
	}

	waitProcReady(t, open)
	base = "http://" + open.http
	if code, r := e2eCall(t, http.MethodPut, base+"/v1/sessions/x", "", session); code != http.StatusOK || r.UserID != "x" {
		t.Fatalf("PUT session with --dev-insecure-api: %d %+v", code, r)
	}
	if code, r := e2eCall(t, http.MethodGet, base+"/v1/sessions/x", "", nil); code != http.StatusOK || string(r.Data) != `{"k":"v"}` {
		t.Fatalf("GET session with --dev-insecure-api: %d %+v", code, r)
	}
	warned := false
	for _, l := range procLogLines(open) {
		warned = warned || (l.Level == "WARN" && strings.Contains(l.Msg, warning))
	}
	if !warned {
		t.Errorf("no warning line for --dev-insecure-api:\n%s", open.log.String())
	}
}

// TestServeBadFlags: a configuration serve cannot use ends the process at
// once with one line on stderr, no panic, and no secret from the command
// line.
func TestServeBadFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	dir := t.TempDir()
	jwks := writeTestFile(t, dir, "jwks.json", `{"keys": []}`)
	unknownField := writeTestFile(t, dir, "unknown.yaml", "issuers:\n  - issuer: a\n    audiences: [x]\n    jwks_file: "+jwks+"\n    bogus: 1\n")
	const password = "hunter2secret"
	// Loopback and free ports throughout, so that a configuration accepted
	// by mistake binds nothing public; later flags override these.
	base := []string{"serve", "--node-name", "bad", "--gossip-addr", "127.0.0.1:0", "--peer-addr", "127.0.0.1:0",
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--source", "sqlite://" + filepath.Join(dir, "authnode.db")}
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		code    int // 0: any non-zero code
		want    string
		oneLine bool
	}{
		{name: "cache mode", args: []string{"--cache-mode", "bogus"}, code: 2, want: "cache mode", oneLine: true},
		{name: "public admin without token", args: []string{"--admin-addr", "0.0.0.0:0"}, code: 2, want: "admin", oneLine: true},
		{name: "audience without issuer", args: []string{"--jwt-audience", "x"}, code: 2, want: "--jwt-issuer", oneLine: true},
		{name: "missing config", args: []string{"--config", "/nonexistent"}, code: 2, want: "--config", oneLine: true},
		{name: "issuer without audience", args: []string{"--jwks-file", jwks, "--jwt-issuer", "i"}, code: 2, want: "audiences", oneLine: true},
		{name: "ENABLE_AUTH_CACHE", env: []string{"ENABLE_AUTH_CACHE=maybe"}, code: 2, want: "ENABLE_AUTH_CACHE", oneLine: true},
		{name: "unreachable postgres", args: []string{"--source", "postgres://u:" + password + "@127.0.0.1:1/x"}, want: "--source"},
		{
			name: "unreachable postgres in one line", args: []string{"--source", "postgres://u:" + password + "@127.0.0.1:1/x"},
			want: "--source", oneLine: true,
		},
		{
			name: "password in the query of an unreachable postgres", args: []string{"--source", "postgres://u@127.0.0.1:1/x?password=" + password},
			want: "--source",
		},
		{
			name: "password parameter in another case", args: []string{"--source", "postgres://u@127.0.0.1:1/x?PassWord=" + password},
			want: "--source",
		},
		{
			name: "key=value connection string", args: []string{"--source", "host=127.0.0.1 port=1 user=u password=" + password},
			want: "--source",
		},
		{
			name: "unparsable postgres URL with a password", args: []string{"--source", "postgres://u:" + password + "%zz@127.0.0.1:1/x"},
			want: "--source",
		},
		{
			name: "config with an unknown field", args: []string{"--config", unknownField}, code: 2, want: "line 5", oneLine: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runBin(t, binEnv(tc.env...), slices.Concat(base, tc.args)...)
			msg := strings.TrimSpace(errOut)
			switch {
			case tc.code != 0 && code != tc.code:
				t.Errorf("exit %d, want %d", code, tc.code)
			case code == 0:
				t.Errorf("exit 0, want an error")
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			if !strings.HasPrefix(msg, "authnode serve: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
			if tc.oneLine && strings.Contains(msg, "\n") {
				t.Errorf("stderr is not one line: %q", errOut)
			}
			if strings.Contains(errOut, "panic") || strings.Contains(errOut, "goroutine ") {
				t.Errorf("stderr shows a panic: %q", errOut)
			}
			if strings.Contains(errOut, password) {
				t.Errorf("stderr holds the password from --source: %q", errOut)
			}
		})
	}
}

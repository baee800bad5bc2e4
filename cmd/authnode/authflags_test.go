package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/avion/authnode/node"
)

// configFromArgs parses args with env as the whole environment and builds the
// node config, as serve does before it opens the source.
func configFromArgs(t *testing.T, env map[string]string, args ...string) (node.Config, error) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f := newServeFlags()
	f.fs.SetOutput(io.Discard)
	if err := f.parse(args, lookup); err != nil {
		return node.Config{}, err
	}
	return f.config(nil, lookup)
}

// writeTestFile writes content to name in dir and returns its path.
func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// emptyJWKSFile writes a JWKS file for the issuers of the tests (its keys
// are not read while the config is built).
func emptyJWKSFile(t *testing.T, dir string) string {
	t.Helper()
	return writeTestFile(t, dir, "jwks.json", `{"keys": []}`)
}

// testHMACSecret is longer than the 32 bytes HS256 needs.
const testHMACSecret = "hmac-secret-0123456789-abcdefghijklmnop"

func TestConfigFileTwoIssuers(t *testing.T) {
	dir := t.TempDir()
	jwks := emptyJWKSFile(t, dir)
	secret := writeTestFile(t, dir, "hmac", testHMACSecret+"\n")
	cfgFile := writeTestFile(t, dir, "issuers.yaml", `jwt_max_bytes: 4096
issuers:
  - issuer: https://idp.example.com/
    audiences: [orders-api]
    algorithms: [EdDSA]
    jwks_file: `+jwks+`
    leeway: 10s
    max_lifetime: 1h
    types: [JWT, at+jwt]
  - issuer: internal
    audiences: [svc-a, svc-b]
    algorithms: [HS256]
    hmac_secret_file: `+secret+`
    max_lifetime: 2h
`)
	cfg, err := configFromArgs(t, nil, "--config", cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.Validator
	if v == nil {
		t.Fatal("no validator built from the config file")
	}
	if v.MaxBytes() != 4096 {
		t.Errorf("jwt_max_bytes from the file not applied: %d", v.MaxBytes())
	}
	byName := map[string]int{}
	for i, is := range v.Issuers() {
		byName[is.Issuer] = i
	}
	issuers := v.Issuers()
	idp, ok1 := byName["https://idp.example.com/"]
	internal, ok2 := byName["internal"]
	if len(issuers) != 2 || !ok1 || !ok2 {
		t.Fatalf("issuers: %+v", issuers)
	}
	if is := issuers[idp]; is.JWKS == nil || len(is.Keys) != 0 || is.Leeway != 10*time.Second || is.MaxLifetime != time.Hour ||
		!slices.Equal(is.Types, []string{"JWT", "at+jwt"}) || !slices.Equal(is.Algorithms, []string{"EdDSA"}) {
		t.Errorf("JWKS issuer: %+v", is)
	}
	if is := issuers[internal]; is.JWKS != nil || len(is.Keys) != 1 || is.Keys[0].Algorithm != "HS256" ||
		string(is.Keys[0].Secret) != testHMACSecret || !slices.Equal(is.Audiences, []string{"svc-a", "svc-b"}) {
		t.Errorf("HMAC issuer (the secret must be read without its newline): %+v", is)
	}
}

func TestConfigFileAndFlagsTogether(t *testing.T) {
	dir := t.TempDir()
	jwks := emptyJWKSFile(t, dir)
	cfgFile := writeTestFile(t, dir, "issuers.yaml", "issuers:\n  - {issuer: a, audiences: [x], jwks_file: "+jwks+"}\n")
	cfg, err := configFromArgs(t, nil, "--config", cfgFile, "--jwt-issuer", "b", "--jwt-audience", "y, z", "--jwks-file", jwks)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Validator == nil || len(cfg.Validator.Issuers()) != 2 {
		t.Fatalf("want the file's issuer and the flags' issuer: %+v", cfg.Validator)
	}
	for _, is := range cfg.Validator.Issuers() {
		if is.Issuer == "b" && !slices.Equal(is.Audiences, []string{"y", "z"}) {
			t.Errorf("--jwt-audience not split: %q", is.Audiences)
		}
	}
	// The same issuer in the file and in the flags is refused.
	if _, err := configFromArgs(t, nil, "--config", cfgFile, "--jwt-issuer", "a", "--jwt-audience", "y", "--jwks-file", jwks); err == nil {
		t.Error("an issuer configured twice was accepted")
	}
}

func TestNoIssuerNoValidator(t *testing.T) {
	cfg, err := configFromArgs(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Validator != nil {
		t.Fatalf("a validator without any issuer: %+v", cfg.Validator)
	}
}

func TestConfigFileRejects(t *testing.T) {
	dir := t.TempDir()
	jwks := emptyJWKSFile(t, dir)
	secret := writeTestFile(t, dir, "hmac", testHMACSecret)
	shortSecret := writeTestFile(t, dir, "short-hmac", "short-hmac-secret-value")
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field":       {"issuers:\n  - issuer: a\n    audiences: [x]\n    jwks_file: " + jwks + "\n    audience: y\n", "line 5"},
		"unknown top level":   {"jwt_max_byte: 10\nissuers:\n  - {issuer: a, audiences: [x], jwks_file: " + jwks + "}\n", "line 1"},
		"no issuers":          {"issuers: []\n", "no issuers"},
		"no issuers key":      {"jwt_max_bytes: 4096\n", "no issuers"},
		"no audiences":        {"issuers:\n  - {issuer: a, jwks_file: " + jwks + "}\n", "no audiences"},
		"empty audiences":     {"issuers:\n  - {issuer: a, audiences: [], jwks_file: " + jwks + "}\n", "no audiences"},
		"two key sources":     {"issuers:\n  - {issuer: a, audiences: [x], jwks_file: " + jwks + ", jwks_url: 'https://idp.example.com/jwks'}\n", "exactly one"},
		"jwks and hmac":       {"issuers:\n  - {issuer: a, audiences: [x], algorithms: [HS256], jwks_file: " + jwks + ", hmac_secret_file: " + secret + "}\n", "exactly one"},
		"no key source":       {"issuers:\n  - {issuer: a, audiences: [x]}\n", "exactly one"},
		"hmac default algs":   {"issuers:\n  - {issuer: a, audiences: [x], hmac_secret_file: " + secret + "}\n", "HS256"},
		"hmac with RS256":     {"issuers:\n  - {issuer: a, audiences: [x], algorithms: [HS256, RS256], hmac_secret_file: " + secret + "}\n", "exactly one algorithm"},
		"hmac short secret":   {"issuers:\n  - {issuer: a, audiences: [x], algorithms: [HS256], hmac_secret_file: " + shortSecret + "}\n", "256 bits"},
		"hmac missing file":   {"issuers:\n  - {issuer: a, audiences: [x], algorithms: [HS256], hmac_secret_file: " + filepath.Join(dir, "nope") + "}\n", "HMAC secret file"},
		"no issuer name":      {"issuers:\n  - {audiences: [x], jwks_file: " + jwks + "}\n", "needs a name"},
		"negative leeway":     {"issuers:\n  - {issuer: a, audiences: [x], jwks_file: " + jwks + ", leeway: -1s}\n", "negative"},
		"wrong type":          {"issuers:\n  - {issuer: a, audiences: x, jwks_file: " + jwks + "}\n", "line 2"},
		"duplicate issuer":    {"issuers:\n  - {issuer: a, audiences: [x], jwks_file: " + jwks + "}\n  - {issuer: a, audiences: [y], jwks_file: " + jwks + "}\n", "twice"},
		"not yaml":            {"{{{", "--config"},
		"issuers not a list":  {"issuers: {issuer: a}\n", "line 1"},
		"bad duration":        {"issuers:\n  - {issuer: a, audiences: [x], jwks_file: " + jwks + ", max_lifetime: 1x}\n", "line 2"},
		"config is directory": {"", "--config"},
	} {
		t.Run(name, func(t *testing.T) {
			path := dir // a directory cannot be read as a file
			if tc.yaml != "" {
				path = writeTestFile(t, t.TempDir(), "c.yaml", tc.yaml)
			}
			_, err := configFromArgs(t, nil, "--config", path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one that says %q", err, tc.want)
			}
			for _, s := range []string{testHMACSecret, "short-hmac-secret-value"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error quotes an HMAC secret: %v", err)
				}
			}
		})
	}
	if _, err := configFromArgs(t, nil, "--config", filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("missing config file: %v", err)
	}
}

func TestIssuerFlagsRejects(t *testing.T) {
	dir := t.TempDir()
	jwks := emptyJWKSFile(t, dir)
	secret := writeTestFile(t, dir, "hmac", testHMACSecret)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"audience without issuer":   {[]string{"--jwt-audience", "x"}, "--jwt-issuer is required"},
		"jwks file without issuer":  {[]string{"--jwks-file", jwks, "--jwt-audience", "x"}, "--jwt-issuer is required"},
		"hmac file without issuer":  {[]string{"--jwt-hmac-secret-file", secret, "--jwt-algs", "HS256", "--jwt-audience", "x"}, "--jwt-issuer is required"},
		"issuer without audience":   {[]string{"--jwt-issuer", "i", "--jwks-file", jwks}, "no audiences"},
		"issuer without keys":       {[]string{"--jwt-issuer", "i", "--jwt-audience", "x"}, "exactly one"},
		"two key sources":           {[]string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwks-file", jwks, "--jwks-url", "https://idp.example.com/jwks"}, "exactly one"},
		"hmac with default algs":    {[]string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwt-hmac-secret-file", secret}, "HS256"},
		"hmac with mixed algs":      {[]string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwt-hmac-secret-file", secret, "--jwt-algs", "HS256,RS256"}, "exactly one algorithm"},
		"hmac with two hs algs":     {[]string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwt-hmac-secret-file", secret, "--jwt-algs", "HS256,HS512"}, "exactly one algorithm"},
		"negative leeway":           {[]string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwks-file", jwks, "--jwt-leeway", "-1s"}, "negative"},
		"audience via environment":  {[]string{}, "--jwt-issuer is required"},
		"hmac secret only RS algs":  {[]string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwt-hmac-secret-file", secret, "--jwt-algs", "RS256"}, "HS256"},
		"jwks file with bad leeway": {[]string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwks-file", jwks, "--jwt-leeway", "soon"}, "jwt-leeway"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			if name == "audience via environment" {
				env["AUTHNODE_JWT_AUDIENCE"] = "x"
			}
			_, err := configFromArgs(t, env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one that says %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testHMACSecret) {
				t.Fatalf("the error quotes the HMAC secret: %v", err)
			}
		})
	}
}

func TestIssuerFlagsHMAC(t *testing.T) {
	secret := writeTestFile(t, t.TempDir(), "hmac", testHMACSecret+"\r\n")
	cfg, err := configFromArgs(t, nil, "--jwt-issuer", "i", "--jwt-audience", "x", "--jwt-hmac-secret-file", secret, "--jwt-algs", "HS256")
	if err != nil {
		t.Fatal(err)
	}
	is := cfg.Validator.Issuers()
	if len(is) != 1 || len(is[0].Keys) != 1 || string(is[0].Keys[0].Secret) != testHMACSecret || is[0].Keys[0].Algorithm != "HS256" {
		t.Fatalf("issuer: %+v", is)
	}
}

func TestJWTMaxBytes(t *testing.T) {
	dir := t.TempDir()
	jwks := emptyJWKSFile(t, dir)
	withMax := writeTestFile(t, dir, "max.yaml", "jwt_max_bytes: 2048\nissuers:\n  - {issuer: a, audiences: [x], jwks_file: "+jwks+"}\n")
	withoutMax := writeTestFile(t, dir, "nomax.yaml", "issuers:\n  - {issuer: a, audiences: [x], jwks_file: "+jwks+"}\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"file", nil, []string{"--config", withMax}, 2048},
		{"flag wins", nil, []string{"--config", withMax, "--jwt-max-bytes", "16384"}, 16384},
		{"flag wins at its default value", nil, []string{"--config", withMax, "--jwt-max-bytes", "8192"}, 8192},
		{"flag before config wins", nil, []string{"--jwt-max-bytes", "1000", "--config", withMax}, 1000},
		{"environment wins", map[string]string{"AUTHNODE_JWT_MAX_BYTES": "3000"}, []string{"--config", withMax}, 3000},
		{"file without a max", nil, []string{"--config", withoutMax}, 8 << 10},
		{"flags only", nil, []string{"--jwt-issuer", "i", "--jwt-audience", "x", "--jwks-file", jwks, "--jwt-max-bytes", "5000"}, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := configFromArgs(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Validator.MaxBytes(); got != tc.want {
				t.Fatalf("MaxBytes = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCacheMode(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string // "" means an error
	}{
		{nil, nil, node.ModeCluster},
		{nil, []string{"--cache-mode", "local"}, node.ModeLocal},
		{nil, []string{"--cache-mode", "off"}, node.ModeOff},
		{map[string]string{"AUTHNODE_CACHE_MODE": "local"}, nil, node.ModeLocal},
		{map[string]string{"ENABLE_AUTH_CACHE": "false"}, nil, node.ModeOff},
		{map[string]string{"ENABLE_AUTH_CACHE": "false"}, []string{"--cache-mode", "cluster"}, node.ModeOff},
		{map[string]string{"ENABLE_AUTH_CACHE": "FALSE"}, []string{"--cache-mode", "local"}, node.ModeOff},
		{map[string]string{"ENABLE_AUTH_CACHE": " 0 "}, nil, node.ModeOff},
		{map[string]string{"ENABLE_AUTH_CACHE": "off", "AUTHNODE_CACHE_MODE": "local"}, nil, node.ModeOff},
		{map[string]string{"ENABLE_AUTH_CACHE": "true"}, []string{"--cache-mode", "local"}, node.ModeLocal},
		{map[string]string{"ENABLE_AUTH_CACHE": ""}, nil, node.ModeCluster},
		{map[string]string{"ENABLE_AUTH_CACHE": "maybe"}, nil, ""},
		{map[string]string{"ENABLE_AUTH_CACHE": "disabled"}, nil, ""},
		{nil, []string{"--cache-mode", "redis"}, ""},
		{nil, []string{"--cache-mode", "bogus"}, ""},
		{nil, []string{"--cache-mode", ""}, ""},
		{nil, []string{"--cache-mode", "Cluster"}, ""},
	} {
		cfg, err := configFromArgs(t, tc.env, tc.args...)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("env %v args %q: accepted with cache mode %q", tc.env, tc.args, cfg.CacheMode)
		case tc.want != "" && err != nil:
			t.Errorf("env %v args %q: %v", tc.env, tc.args, err)
		case tc.want != "" && cfg.CacheMode != tc.want:
			t.Errorf("env %v args %q: cache mode %q, want %q", tc.env, tc.args, cfg.CacheMode, tc.want)
		}
	}
	_, err := configFromArgs(t, map[string]string{"ENABLE_AUTH_CACHE": "maybe"})
	if err == nil || !strings.Contains(err.Error(), "ENABLE_AUTH_CACHE") {
		t.Errorf("ENABLE_AUTH_CACHE=maybe: the error does not name the variable: %v", err)
	}
	for _, mode := range []string{"redis", "bogus"} {
		if _, err := configFromArgs(t, nil, "--cache-mode", mode); err == nil || !strings.Contains(err.Error(), "cache mode") {
			t.Errorf("--cache-mode %s: %v", mode, err)
		}
	}
}

func TestAdminAndAPITokens(t *testing.T) {
	dir := t.TempDir()
	const (
		adminTok = "admin-token-0123456789abcdef"
		apiTok   = "api-token-0123456789abcdef-1"
		apiTok2  = "api-token-0123456789abcdef-2"
		shortTok = "short-tok-15chr" // 15 characters
	)
	adminFile := writeTestFile(t, dir, "admin", adminTok+"\n")
	shortAdminFile := writeTestFile(t, dir, "short-admin", shortTok+"\n")
	apiFile := writeTestFile(t, dir, "api", "# the API tokens\n\n  "+apiTok+"  \n# rotated:\n"+apiTok2+"\r\n\n")
	shortAPIFile := writeTestFile(t, dir, "short-api", apiTok+"\n"+shortTok+"\n")
	emptyFile := writeTestFile(t, dir, "empty", "")
	blankFile := writeTestFile(t, dir, "blank", "\n  \n\t\n")
	commentsFile := writeTestFile(t, dir, "comments", "# nothing here\n  # nor here\n")
	secrets := []string{adminTok, apiTok, apiTok2, shortTok}

	t.Run("accepted", func(t *testing.T) {
		for _, tc := range []struct {
			args        []string
			admin, apis []string
		}{
			{[]string{"--admin-addr", "0.0.0.0:8081", "--admin-token-file", adminFile}, []string{adminTok}, nil},
			{[]string{"--admin-addr", "0.0.0.0:8081", "--admin-token", adminTok}, []string{adminTok}, nil},
			{[]string{"--admin-addr", "127.0.0.1:8081"}, nil, nil},
			{[]string{"--admin-addr", "[::1]:8081"}, nil, nil},
			{[]string{"--admin-addr", "localhost:8081"}, nil, nil},
			{[]string{"--api-token-file", apiFile}, nil, []string{apiTok, apiTok2}},
		} {
			cfg, err := configFromArgs(t, nil, tc.args...)
			if err != nil {
				t.Errorf("%q: %v", tc.args, err)
				continue
			}
			if !slices.Equal(cfg.AdminTokens, tc.admin) || !slices.Equal(cfg.APITokens, tc.apis) {
				t.Errorf("%q: admin tokens %q, API tokens %q", tc.args, cfg.AdminTokens, cfg.APITokens)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			env  map[string]string
			args []string
			want string
		}{
			{nil, []string{"--admin-addr", "0.0.0.0:8081"}, "not loopback"},
			{nil, []string{"--admin-addr", ":8081"}, "not loopback"},
			{nil, []string{"--admin-addr", "10.1.2.3:8081"}, "not loopback"},
			{nil, []string{"--admin-token", adminTok, "--admin-token-file", adminFile}, "exclusive"},
			{map[string]string{"AUTHNODE_ADMIN_TOKEN": adminTok}, []string{"--admin-token-file", adminFile}, "exclusive"},
			{nil, []string{"--admin-token", shortTok}, "16 characters"},
			{nil, []string{"--admin-addr", "0.0.0.0:8081", "--admin-token-file", shortAdminFile}, "16 characters"},
			{nil, []string{"--api-token-file", shortAPIFile}, "16 characters"},
			{nil, []string{"--api-token-file", emptyFile}, "no token"},
			{nil, []string{"--api-token-file", blankFile}, "no token"},
			{nil, []string{"--api-token-file", commentsFile}, "no token"},
			{nil, []string{"--api-token-file", filepath.Join(dir, "missing")}, "--api-token-file"},
			{nil, []string{"--admin-token-file", emptyFile}, "no token"},
			{nil, []string{"--admin-token-file", filepath.Join(dir, "missing")}, "--admin-token-file"},
		} {
			_, err := configFromArgs(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("env %v args %q: err = %v, want one that says %q", tc.env, tc.args, err, tc.want)
				continue
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("args %q: the error quotes a token: %v", tc.args, err)
				}
			}
		}
	})
}

// testTLSFiles are the PEM files of the TLS tests.
type testTLSFiles struct{ ca, cert, key, notPEM string }

// writeTLSFiles writes a CA, a server certificate the CA signed with its
// key, and a file with no PEM in it.
func writeTLSFiles(t *testing.T) testTLSFiles {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authnode test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey := newKey()
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	return testTLSFiles{
		ca:     writeTestFile(t, dir, "ca.pem", pemOf("CERTIFICATE", caDER)),
		cert:   writeTestFile(t, dir, "server.pem", pemOf("CERTIFICATE", srvDER)),
		key:    writeTestFile(t, dir, "server-key.pem", pemOf("PRIVATE KEY", keyDER)),
		notPEM: writeTestFile(t, dir, "not-pem.txt", "this is not a certificate\n"),
	}
}

func TestTLSFlags(t *testing.T) {
	f := writeTLSFiles(t)
	cfg, err := configFromArgs(t, nil)
	if err != nil || cfg.TLS != nil {
		t.Fatalf("TLS without TLS flags: %v, %v", cfg.TLS, err)
	}

	cfg, err = configFromArgs(t, nil, "--tls-cert-file", f.cert, "--tls-key-file", f.key)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil || len(cfg.TLS.Certificates) != 1 || cfg.TLS.ClientAuth != tls.NoClientCert || cfg.TLS.ClientCAs != nil {
		t.Fatalf("TLS config: %+v", cfg.TLS)
	}
	if cfg.TLS.MinVersion < tls.VersionTLS12 {
		t.Errorf("TLS MinVersion %#x below TLS 1.2", cfg.TLS.MinVersion)
	}

	cfg, err = configFromArgs(t, nil, "--tls-cert-file", f.cert, "--tls-key-file", f.key, "--tls-client-ca-file", f.ca)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil || cfg.TLS.ClientAuth != tls.VerifyClientCertIfGiven || cfg.TLS.ClientCAs == nil {
		t.Fatalf("mTLS config: %+v", cfg.TLS)
	}
	// The pool holds the CA: the server certificate verifies against it.
	srv, err := x509.ParseCertificate(cfg.TLS.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Verify(x509.VerifyOptions{Roots: cfg.TLS.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the client CA pool does not hold the CA: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert-file", f.cert, "--tls-key-file", f.key, "--tls-client-ca-file", f.notPEM}, "no PEM"},
		{[]string{"--tls-cert-file", f.cert, "--tls-key-file", f.key, "--tls-client-ca-file", f.notPEM + ".missing"}, "--tls-client-ca-file"},
		{[]string{"--tls-client-ca-file", f.ca}, "needs --tls-cert-file"},
		{[]string{"--tls-cert-file", f.cert}, "--tls-cert-file"},
		{[]string{"--tls-key-file", f.key}, "--tls-cert-file"},
		{[]string{"--tls-cert-file", f.cert, "--tls-key-file", f.notPEM}, "--tls-cert-file"},
		{[]string{"--tls-cert-file", f.ca, "--tls-key-file", f.key}, "--tls-cert-file"}, // key does not match
	} {
		cfg, err := configFromArgs(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: TLS %+v, err = %v, want one that says %q", tc.args, cfg.TLS, err, tc.want)
		}
	}
}

func TestJWKSURLMustBeHTTPS(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://idp.example.com/jwks.json": true,
		"http://127.0.0.1:8080/jwks.json":   true,
		"http://[::1]/jwks.json":            true,
		"http://localhost/jwks.json":        true,
		"http://idp.example.com/jwks.json":  false,
		"ftp://idp.example.com/jwks.json":   false,
		"/etc/jwks.json":                    false,
		"https://":                          false,
	} {
		if err := checkJWKSURL(raw); (err == nil) != ok {
			t.Errorf("checkJWKSURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}

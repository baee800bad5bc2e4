package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/avion/authnode/auth"
)

// mintToken runs authnode token mint with args and returns the token, failing
// the test unless it succeeded with exactly the development warning.
func mintToken(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(append([]string{"token", "mint"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("token mint %q = %d: %s", args, code, errOut.String())
	}
	if warn := errOut.String(); strings.Count(warn, "\n") != 1 || !strings.Contains(warn, "(development only)") {
		t.Errorf("token mint %q: want one warning line on stderr, got %q", args, warn)
	}
	tok := strings.TrimSuffix(out.String(), "\n")
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token mint %q printed %q, want one JWT", args, out.String())
	}
	return tok
}

// devValidator returns a validator trusting the JWKS in dir for iss and aud,
// as authnode serve --jwks-file would.
func devValidator(t *testing.T, dir, iss, aud string) (*auth.Validator, []auth.Key) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(dir, devJWKSFile))
	if err != nil {
		t.Fatal(err)
	}
	keys, skipped, err := auth.ParseJWKS(doc)
	if err != nil || skipped != 0 || len(keys) != 1 {
		t.Fatalf("ParseJWKS = %d keys, %d skipped, %v\n%s", len(keys), skipped, err, doc)
	}
	v, err := auth.NewValidator([]auth.Issuer{{Issuer: iss, Audiences: []string{aud}, Keys: keys}}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v, keys
}

func tokenHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]any
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("header of %q: %v", tok, err)
	}
	return h
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestTokenMintDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok := mintToken(t, "--dev", "--data-dir", dir, "--sub", "alice", "--ttl", "1h", "--scope", " read  write ")

	for name, want := range map[string]os.FileMode{".": 0o700, devKeyFile: 0o600, devJWKSFile: 0o644, devReadmeFile: 0o644} {
		if got := fileMode(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s: mode %#o, want %#o", name, got, want)
		}
	}
	if readme, _ := os.ReadFile(filepath.Join(dir, devReadmeFile)); !bytes.HasPrefix(readme, []byte("DEVELOPMENT ONLY - never use this key in production")) {
		t.Errorf("README:\n%s", readme)
	}
	if h := tokenHeader(t, tok); h["kid"] != "dev-1" || h["alg"] != "EdDSA" || h["typ"] != "JWT" || len(h) != 3 {
		t.Errorf("header %v", h)
	}

	v, keys := devValidator(t, dir, "authnode-dev", "authnode-dev")
	if keys[0].ID != "dev-1" || keys[0].Algorithm != "EdDSA" {
		t.Errorf("JWKS key %q %s", keys[0].ID, keys[0].Algorithm)
	}
	c, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.UserID != "alice" || !slices.Equal(c.Scopes, []string{"read", "write"}) || !slices.Equal(c.Audience, []string{"authnode-dev"}) ||
		c.Issuer != "authnode-dev" || c.ExpiresAt.Sub(c.IssuedAt) != time.Hour || time.Since(c.IssuedAt) > time.Minute {
		t.Errorf("claims %+v", c)
	}

	// A second mint reuses the key: the first JWKS verifies its token, and
	// the files are unchanged.
	files := map[string][]byte{}
	for _, name := range []string{devKeyFile, devJWKSFile, devReadmeFile} {
		files[name], _ = os.ReadFile(filepath.Join(dir, name))
	}
	tok2 := mintToken(t, "--dev", "--data-dir", dir, "--sub", "bob", "--ttl", "24h")
	c, err = v.Validate(context.Background(), tok2)
	if err != nil || c.UserID != "bob" || c.Scopes != nil || c.ExpiresAt.Sub(c.IssuedAt) != 24*time.Hour {
		t.Errorf("second token: %+v, %v", c, err)
	}
	for name, before := range files {
		if after, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(before, after) {
			t.Errorf("%s changed on the second mint", name)
		}
	}
	if _, keys2 := devValidator(t, dir, "x", "y"); keys2[0].ID != "dev-1" || !keys[0].Public.(ed25519.PublicKey).Equal(keys2[0].Public) {
		t.Errorf("second mint published another key")
	}

	// Other issuer and audience: only a validator configured for them
	// accepts the token.
	tok3 := mintToken(t, "--dev", "--data-dir", dir, "--iss", "https://idp.example", "--aud", "orders")
	if _, err := v.Validate(context.Background(), tok3); auth.ErrorCode(err) != auth.CodeIssuerInvalid {
		t.Errorf("token of another issuer: %v", err)
	}
	v3, _ := devValidator(t, dir, "https://idp.example", "orders")
	if c, err := v3.Validate(context.Background(), tok3); err != nil || c.UserID != "alice" {
		t.Errorf("--iss/--aud token: %+v, %v", c, err)
	}
}

func TestTokenMintKeyFiles(t *testing.T) {
	dir := t.TempDir()
	key, jwks := filepath.Join(dir, devKeyFile), filepath.Join(dir, devJWKSFile)
	mintToken(t, "--dev", "--data-dir", dir)
	original, _ := os.ReadFile(jwks)

	// A missing JWKS is written again from the existing key.
	if err := os.Remove(jwks); err != nil {
		t.Fatal(err)
	}
	mintToken(t, "--dev", "--data-dir", dir)
	if again, _ := os.ReadFile(jwks); !bytes.Equal(original, again) {
		t.Errorf("JWKS rewritten differently:\n%s\n%s", original, again)
	}

	// A new key replaces a stale JWKS, and its tokens verify with the new one.
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	tok := mintToken(t, "--dev", "--data-dir", dir)
	if again, _ := os.ReadFile(jwks); bytes.Equal(original, again) {
		t.Errorf("JWKS not rewritten for the new key")
	}
	v, _ := devValidator(t, dir, "authnode-dev", "authnode-dev")
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Errorf("token of the new key: %v", err)
	}

	// Files that cannot be used are errors (exit 1), never silently replaced.
	otherPub, _, _ := ed25519.GenerateKey(nil)
	otherJWKS := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(otherPub) + `","kid":"dev-1","alg":"EdDSA","use":"sig"}]}`
	goodKey, _ := os.ReadFile(key)
	for _, tc := range []struct {
		name       string
		key, jwks  string
		keyMode    os.FileMode
		wantErrOut string
	}{
		{"JWKS of another key", string(goodKey), otherJWKS, 0o600, "does not publish"},
		{"not a JWKS", string(goodKey), "[]", 0o600, "does not publish"},
		{"key open to others", string(goodKey), "", 0o644, "chmod 600"},
		{"not PEM", "garbage", "", 0o600, "not one PKCS#8 PEM private key"},
		{"not PKCS#8", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "", 0o600, "not an Ed25519 private key"},
	} {
		_ = os.Remove(jwks)
		if tc.jwks != "" {
			_ = os.WriteFile(jwks, []byte(tc.jwks), 0o644)
		}
		_ = os.Remove(key)
		if err := os.WriteFile(key, []byte(tc.key), tc.keyMode); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(key, tc.keyMode)
		var out, errOut bytes.Buffer
		code := run([]string{"token", "mint", "--dev", "--data-dir", dir}, &out, &errOut)
		if code != 1 || out.Len() != 0 || !strings.Contains(errOut.String(), tc.wantErrOut) || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("%s: %d, stdout %q, stderr %q", tc.name, code, out.String(), errOut.String())
		}
		if after, _ := os.ReadFile(key); string(after) != tc.key {
			t.Errorf("%s: the key file was replaced", tc.name)
		}
	}
}

func TestTokenBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token"}, "want mint"},
		{[]string{"token", "burn"}, "want mint"},
		{[]string{"token", "mint", "--data-dir", dir}, "only --dev minting is supported (tokens come from your identity provider)"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--ttl", "25h"}, "--ttl"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--ttl", "0s"}, "--ttl"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--ttl", "-1h"}, "--ttl"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--ttl", "soon"}, "invalid value"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--sub", " "}, "--sub"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--aud", ""}, "--aud"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--iss", ""}, "--iss"},
		{[]string{"token", "mint", "--dev", "--data-dir", ""}, "--data-dir"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"token", "mint", "--dev", "--data-dir", dir, "extra"}, `unexpected argument "extra"`},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		msg := errOut.String()
		if code != 2 || out.Len() != 0 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "authnode token") {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", tc.args, code, out.String(), msg)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("bad input created the data directory: %v", err)
	}
}

func TestTokenHelp(t *testing.T) {
	for _, args := range [][]string{{"token", "--help"}, {"token", "-h"}, {"token", "help"}, {"token", "mint", "--help"}, {"token", "mint", "--dev", "-h"}} {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if code != 0 || errOut.Len() != 0 || !strings.HasPrefix(out.String(), "Usage: authnode token mint --dev") || !strings.Contains(out.String(), "-ttl duration") {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", args, code, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if run([]string{"help"}, &out, &errOut) != 0 || !strings.Contains(out.String(), "token     mint a development token") {
		t.Errorf("authnode help does not list token:\n%s", out.String())
	}
}

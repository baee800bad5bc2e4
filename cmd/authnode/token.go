package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/avion/authnode/auth"
)

// The development key: its files in the data directory, its kid, and the
// longest lifetime a minted token may have (the validator's default cap).
const (
	devKeyFile    = "dev-signing-key.pem"
	devJWKSFile   = "dev-jwks.json"
	devReadmeFile = "DEV-KEY-README.txt"
	devKid        = "dev-1"
	maxMintTTL    = 24 * time.Hour
)

const tokenUsage = `Usage: authnode token mint --dev [flags]

Prints one signed JWT (EdDSA, kid dev-1) on stdout, to try a local node
without an identity provider. With --dev it signs with a development key kept
in the data directory: dev-signing-key.pem (Ed25519, PKCS#8 PEM, mode 0600)
and its public half dev-jwks.json (for authnode serve --jwks-file), both
created on first use and reused afterwards. Development only: production
tokens come from your identity provider, and no production node should trust
dev-jwks.json.

Flags:
`

const devReadme = `DEVELOPMENT ONLY - never use this key in production.

The files beside this one are written by ` + "`authnode token mint --dev`" + `:

  dev-signing-key.pem  an Ed25519 private key (PKCS#8 PEM, mode 0600) that
                       signs development tokens
  dev-jwks.json        its public half as a JWKS (kid dev-1, alg EdDSA), for
                       ` + "`authnode serve --jwks-file`" + ` on a development node

Anyone who can read dev-signing-key.pem can mint tokens for any user that a
node trusting dev-jwks.json accepts. Never configure a production node with
dev-jwks.json, never copy these files to a shared or production host, and
never commit them. Production tokens come from your identity provider;
authnode only validates them.

To get a new key, delete dev-signing-key.pem: the next mint creates a new key
and rewrites dev-jwks.json (restart the node so that it reads the new JWKS).
`

// token runs `authnode token mint --dev`.
func token(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && isHelpArg(args[0]) {
		newMintFlags().usage(stdout)
		return 0
	}
	if len(args) == 0 || args[0] != "mint" {
		fmt.Fprintln(stderr, "authnode token: want mint (authnode token mint --dev [flags]; see authnode token --help)")
		return 2
	}
	return mint(args[1:], stdout, stderr)
}

func isHelpArg(s string) bool {
	switch s {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// mintFlags holds authnode token mint's flags.
type mintFlags struct {
	fs      *flag.FlagSet
	dev     bool
	dataDir string
	sub     string
	ttl     time.Duration
	scope   string
	aud     string
	iss     string
}

func newMintFlags() *mintFlags {
	f := &mintFlags{fs: flag.NewFlagSet("authnode token mint", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(io.Discard) // errors are reported by mint, in one line
	fs.Usage = func() {}
	fs.BoolVar(&f.dev, "dev", false, "sign with the development key in --data-dir, created on first use (required)")
	fs.StringVar(&f.dataDir, "data-dir", "./data", "directory of the development key files")
	fs.StringVar(&f.sub, "sub", "alice", "subject (sub): the user ID the token is for")
	fs.DurationVar(&f.ttl, "ttl", time.Hour, "lifetime of the token, 1s to 24h")
	fs.StringVar(&f.scope, "scope", "", `space-separated scopes, for example "read write" (empty: no scope claim)`)
	fs.StringVar(&f.aud, "aud", "authnode-dev", "audience (aud)")
	fs.StringVar(&f.iss, "iss", "authnode-dev", "issuer (iss)")
	return f
}

func (f *mintFlags) usage(w io.Writer) {
	fmt.Fprint(w, tokenUsage)
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
	f.fs.SetOutput(io.Discard)
}

// check reports the first flag value that cannot be used.
func (f *mintFlags) check() error {
	switch {
	case f.fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	case !f.dev:
		return errors.New("only --dev minting is supported (tokens come from your identity provider)")
	case f.ttl < time.Second || f.ttl > maxMintTTL:
		return fmt.Errorf("--ttl %v is out of range: want 1s to 24h", f.ttl)
	case strings.TrimSpace(f.sub) == "":
		return errors.New("--sub must not be empty")
	case strings.TrimSpace(f.iss) == "":
		return errors.New("--iss must not be empty")
	case strings.TrimSpace(f.aud) == "":
		return errors.New("--aud must not be empty")
	case f.dataDir == "":
		return errors.New("--data-dir must not be empty")
	}
	return nil
}

// mint signs one token with the development key and prints it. Every run
// warns on stderr that the key is for development only.
func mint(args []string, stdout, stderr io.Writer) int {
	f := newMintFlags()
	err := f.fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		f.usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "authnode token mint: %s (see authnode token mint --help)\n", oneLine(err))
		return 2
	}
	if err := f.check(); err != nil {
		fmt.Fprintf(stderr, "authnode token mint: %s\n", oneLine(err))
		return 2
	}
	key, err := devKey(f.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "authnode token mint: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintf(stderr, "authnode token mint: using the development key in %s (development only)\n", f.dataDir)
	signed, err := f.sign(key, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "authnode token mint: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintln(stdout, signed)
	return 0
}

// mintClaims is the payload of a minted token.
type mintClaims struct {
	Scope string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// sign returns the token the flags describe, issued at now.
func (f *mintFlags) sign(key ed25519.PrivateKey, now time.Time) (string, error) {
	iat := now.Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, mintClaims{
		Scope: strings.Join(strings.Fields(f.scope), " "),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    f.iss,
			Subject:   f.sub,
			Audience:  jwt.ClaimStrings{f.aud},
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(f.ttl)),
		},
	})
	t.Header["kid"] = devKid // typ JWT and alg EdDSA are set by jwt.NewWithClaims
	return t.SignedString(key)
}

// devKey returns the development signing key in dir. On first use it
// creates dir (0700), the key (0600), its JWKS and the README. An existing
// key is reused, and an existing JWKS must publish its public half under
// kid dev-1, or a node started with it would refuse every minted token.
func devKey(dir string) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, created, err := loadOrCreateKey(filepath.Join(dir, devKeyFile))
	if err != nil {
		return nil, err
	}
	pub, _ := key.Public().(ed25519.PublicKey)
	if err := ensureJWKS(filepath.Join(dir, devJWKSFile), pub, created); err != nil {
		return nil, err
	}
	readme := filepath.Join(dir, devReadmeFile)
	if _, err := os.Stat(readme); errors.Is(err, fs.ErrNotExist) {
		return key, writeFileAtomic(readme, []byte(devReadme), 0o644)
	}
	return key, nil
}

// loadOrCreateKey reads the key at path, or creates it when there is none.
// created says whether this call created it. Two mints racing on a fresh
// directory agree on one key: the file appears whole or not at all, and
// never replaces one that exists.
func loadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	err = createFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if errors.Is(err, fs.ErrExist) { // another mint was first: use its key
		key, err = readKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// readKey reads an Ed25519 PKCS#8 PEM private key that only its owner can
// read or write.
func readKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s is open to other users (mode %#o): chmod 600 it", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s is not one PKCS#8 PEM private key (delete it to get a new key)", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	key, ok := parsed.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("%s is not an Ed25519 private key (delete it to get a new key)", path)
	}
	return key, nil
}

// devJWK is the public development key as a JSON Web Key.
type devJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// ensureJWKS writes the JWKS of pub at path when the key is new or the file
// is missing; otherwise it checks that the file publishes pub.
func ensureJWKS(path string, pub ed25519.PublicKey, keyIsNew bool) error {
	if !keyIsNew {
		doc, err := os.ReadFile(path)
		if err == nil {
			if publishes(doc, pub) {
				return nil
			}
			return fmt.Errorf("%s does not publish the public half of %s under kid %s (delete %s to start over)", path, devKeyFile, devKid, devKeyFile)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	doc, err := json.MarshalIndent(map[string][]devJWK{"keys": {{
		Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
		Kid: devKid, Alg: "EdDSA", Use: "sig",
	}}}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(doc, '\n'), 0o644)
}

// publishes reports whether the JWKS doc holds pub as kid dev-1, read the
// way authnode serve reads it.
func publishes(doc []byte, pub ed25519.PublicKey) bool {
	keys, _, err := auth.ParseJWKS(doc)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if k.ID == devKid && k.Algorithm == "EdDSA" && pub.Equal(k.Public) {
			return true
		}
	}
	return false
}

// createFile creates path holding data with mode perm, whole or not at all;
// it fails with fs.ErrExist when path exists.
func createFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := tempFile(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Link(tmp, path)
}

// writeFileAtomic replaces path with data, mode perm: readers see the old
// file or the new one, never part of one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := tempFile(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// tempFile writes data to a new file beside path and returns its name.
func tempFile(path string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

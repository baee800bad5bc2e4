package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/avion/authnode/auth"
)

// configFile is the --config file: token issuers, each with its own keys.
//
//	jwt_max_bytes: 8192
//	issuers:
//	  - issuer: https://idp.example.com/
//	    audiences: [orders-api]
//	    algorithms: [RS256]
//	    jwks_url: https://idp.example.com/.well-known/jwks.json
//	    leeway: 30s
//	    max_lifetime: 1h
//	    types: [JWT, at+jwt]
type configFile struct {
	JWTMaxBytes int          `yaml:"jwt_max_bytes"`
	Issuers     []issuerSpec `yaml:"issuers"`
}

// issuerSpec is one issuer as flags or the config file give it. Exactly one
// of JWKSURL, JWKSFile and HMACSecretFile supplies the keys.
type issuerSpec struct {
	Issuer         string        `yaml:"issuer"`
	Audiences      []string      `yaml:"audiences"`
	Algorithms     []string      `yaml:"algorithms"`
	Types          []string      `yaml:"types"`
	JWKSURL        string        `yaml:"jwks_url"`
	JWKSFile       string        `yaml:"jwks_file"`
	HMACSecretFile string        `yaml:"hmac_secret_file"`
	Leeway         time.Duration `yaml:"leeway"`
	MaxLifetime    time.Duration `yaml:"max_lifetime"`
}

// readConfigFile decodes path strictly: an unknown field is an error naming
// its line.
func readConfigFile(path string) (configFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return configFile{}, fmt.Errorf("--config: %w", err)
	}
	var c configFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return configFile{}, fmt.Errorf("--config %s: %w", path, err)
	}
	if len(c.Issuers) == 0 {
		return configFile{}, fmt.Errorf("--config %s: no issuers", path)
	}
	return c, nil
}

// spec turns the --jwt-* flags into an issuer; ok is false when no flag
// names an issuer or a key source.
func (f issuerFlags) spec() (issuerSpec, bool, error) {
	s := issuerSpec{
		Issuer: f.issuer, Audiences: splitList(f.audience), Algorithms: splitList(f.algs), Types: splitList(f.typ),
		JWKSURL: f.jwksURL, JWKSFile: f.jwksFile, HMACSecretFile: f.hmacFile, Leeway: f.leeway, MaxLifetime: f.maxLifetime,
	}
	if s.Issuer == "" && s.JWKSURL == "" && s.JWKSFile == "" && s.HMACSecretFile == "" && len(s.Audiences) == 0 {
		return s, false, nil
	}
	if s.Issuer == "" {
		return s, false, errors.New("--jwt-issuer is required with --jwt-audience, --jwks-url, --jwks-file or --jwt-hmac-secret-file")
	}
	return s, true, nil
}

// build checks the spec and creates its keys (a JWKS, not yet fetched, or
// an HMAC key).
func (s issuerSpec) build() (auth.Issuer, error) {
	is := auth.Issuer{Issuer: s.Issuer, Audiences: s.Audiences, Algorithms: s.Algorithms, Types: s.Types, Leeway: s.Leeway, MaxLifetime: s.MaxLifetime}
	name := fmt.Sprintf("issuer %q", s.Issuer)
	sources := 0
	for _, v := range []string{s.JWKSURL, s.JWKSFile, s.HMACSecretFile} {
		if v != "" {
			sources++
		}
	}
	switch {
	case len(s.Audiences) == 0:
		return is, fmt.Errorf("%s: no audiences (--jwt-audience or audiences)", name)
	case sources != 1:
		return is, fmt.Errorf("%s: give exactly one of a JWKS URL, a JWKS file and an HMAC secret file", name)
	case s.Leeway < 0 || s.MaxLifetime < 0:
		return is, fmt.Errorf("%s: leeway and max lifetime must not be negative", name)
	}
	if s.HMACSecretFile != "" {
		key, err := hmacKey(s.HMACSecretFile, s.Algorithms)
		if err != nil {
			return is, fmt.Errorf("%s: %w", name, err)
		}
		is.Keys = []auth.Key{key}
		return is, nil
	}
	if err := checkJWKSURL(s.JWKSURL); err != nil {
		return is, fmt.Errorf("%s: %w", name, err)
	}
	j, err := auth.NewJWKS(auth.JWKSConfig{URL: s.JWKSURL, File: s.JWKSFile})
	if err != nil {
		return is, fmt.Errorf("%s: %w", name, err)
	}
	is.JWKS = j
	return is, nil
}

// checkJWKSURL accepts an https URL, or http to a loopback host (a local
// key server): over plain http anyone on the path could supply keys.
func checkJWKSURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("the JWKS URL is not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return errors.New("the JWKS URL must be https (http only to a loopback host)")
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hmacKey reads an explicitly configured HMAC secret for the one HS
// algorithm allowed. The secret never appears in an error.
func hmacKey(path string, algs []string) (auth.Key, error) {
	var hs []string
	for _, a := range algs {
		if strings.HasPrefix(a, "HS") {
			hs = append(hs, a)
		}
	}
	if len(hs) != 1 || len(algs) != 1 {
		return auth.Key{}, errors.New("an HMAC secret needs exactly one algorithm, HS256, HS384 or HS512 (--jwt-algs)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return auth.Key{}, fmt.Errorf("HMAC secret file: %w", err)
	}
	return auth.Key{Algorithm: hs[0], Secret: bytes.TrimRight(raw, "\r\n")}, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

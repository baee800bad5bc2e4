package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/node"
)

// authFlags are serve's flags for the source, token validation, the APIs'
// tokens, the admin listener, TLS and the cache mode.
type authFlags struct {
	source                 string
	configFile             string
	issuer                 issuerFlags
	jwtMaxBytes            int
	apiTokenFile           string
	devInsecureAPI         bool
	adminAddr              string
	adminToken             string
	adminTokenFile         string
	tlsCert, tlsKey, tlsCA string
	cacheMode              string
	authTTL, watermarkSync time.Duration
	changePoll             time.Duration
	redisURL               string
}

// issuerFlags configure one issuer from flags; --config adds more.
type issuerFlags struct {
	issuer, audience, algs, typ string
	jwksURL, jwksFile, hmacFile string
	leeway, maxLifetime         time.Duration
}

func (f *serveFlags) addAuthFlags() {
	a, fs, d := &f.auth, f.fs, node.DefaultConfig("")
	fs.StringVar(&a.source, "source", "sqlite://./data/authnode.db", "source of truth: sqlite://PATH or postgres://USER@HOST/DB")
	fs.StringVar(&a.configFile, "config", "", "YAML file listing token issuers (several issuers, each with its own keys)")
	fs.StringVar(&a.issuer.issuer, "jwt-issuer", "", "trusted token issuer (iss), checked exactly")
	fs.StringVar(&a.issuer.audience, "jwt-audience", "", "comma-separated audiences; a token must name one")
	fs.StringVar(&a.issuer.algs, "jwt-algs", "RS256,ES256,EdDSA", "comma-separated allowed algorithms")
	fs.StringVar(&a.issuer.typ, "jwt-typ", "", "comma-separated allowed typ header values (empty: not checked)")
	fs.StringVar(&a.issuer.jwksURL, "jwks-url", "", "URL of the issuer's JWKS, refreshed periodically")
	fs.StringVar(&a.issuer.jwksFile, "jwks-file", "", "file holding the issuer's JWKS, re-read periodically")
	fs.StringVar(&a.issuer.hmacFile, "jwt-hmac-secret-file", "", "file holding an HMAC secret (needs --jwt-algs HS256, HS384 or HS512)")
	fs.DurationVar(&a.issuer.leeway, "jwt-leeway", 30*time.Second, "clock skew allowed on exp, nbf and iat")
	fs.DurationVar(&a.issuer.maxLifetime, "jwt-max-lifetime", 24*time.Hour, "longest token lifetime (exp - iat) accepted")
	fs.IntVar(&a.jwtMaxBytes, "jwt-max-bytes", 8<<10, "largest token accepted, checked before parsing")
	fs.StringVar(&a.apiTokenFile, "api-token-file", "", "file with the bearer tokens (one per line) that mutating API calls need")
	fs.BoolVar(&a.devInsecureAPI, "dev-insecure-api", false, "accept mutating API calls without a token (development only)")
	fs.StringVar(&a.adminAddr, "admin-addr", d.AdminAddr, "admin listener; without an admin token it must be loopback")
	fs.StringVar(&a.adminToken, "admin-token", "", "bearer token the admin API requires (prefer --admin-token-file)")
	fs.StringVar(&a.adminTokenFile, "admin-token-file", "", "file holding the admin bearer token")
	fs.StringVar(&a.tlsCert, "tls-cert-file", "", "PEM certificate for the public gRPC and HTTP listeners")
	fs.StringVar(&a.tlsKey, "tls-key-file", "", "PEM private key for --tls-cert-file")
	fs.StringVar(&a.tlsCA, "tls-client-ca-file", "", "PEM CA bundle: require client certificates signed by it (mTLS)")
	fs.StringVar(&a.cacheMode, "cache-mode", d.CacheMode, "cluster, local, redis (per-node caches over Redis, the original plan; needs --redis-url) or off (ENABLE_AUTH_CACHE=false forces off)")
	fs.StringVar(&a.redisURL, "redis-url", "", "optional Redis (redis://[user:password@]host:port/db) for a shared copy of cache entries and one more invalidation channel")
	fs.DurationVar(&a.authTTL, "auth-ttl", d.AuthTTL, "longest a policy, API key or session stays cached: the staleness bound of a member cut off from invalidations")
	fs.DurationVar(&a.watermarkSync, "watermark-sync", d.WatermarkSync, "how often revocation watermarks are read again from the source")
	fs.DurationVar(&a.changePoll, "change-poll", d.ChangePoll, "how often a SQLite source's change feed is read (PostgreSQL pushes changes)")
}

// apply sets cfg's auth fields from the flags. env reads the environment
// (for ENABLE_AUTH_CACHE).
func (a *authFlags) apply(cfg *node.Config, env func(string) (string, bool), given map[string]bool) error {
	cfg.AdminAddr, cfg.DevInsecureAPI, cfg.AuthTTL, cfg.WatermarkSync = a.adminAddr, a.devInsecureAPI, a.authTTL, a.watermarkSync
	cfg.CacheMode, cfg.ChangePoll, cfg.RedisURL = a.cacheMode, a.changePoll, a.redisURL
	if v, ok := env("ENABLE_AUTH_CACHE"); ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "false", "0", "no", "off":
			cfg.CacheMode = node.ModeOff
		case "true", "1", "yes", "on", "":
		default:
			return fmt.Errorf("ENABLE_AUTH_CACHE=%q: want true or false", v)
		}
	}
	var err error
	if cfg.APITokens, err = readTokens("--api-token-file", a.apiTokenFile, true); err != nil {
		return err
	}
	if cfg.AdminTokens, err = a.adminTokens(); err != nil {
		return err
	}
	if cfg.TLS, err = a.tlsConfig(); err != nil {
		return err
	}
	return a.validator(cfg, given)
}

func (a *authFlags) adminTokens() ([]string, error) {
	if a.adminToken != "" && a.adminTokenFile != "" {
		return nil, errors.New("--admin-token and --admin-token-file are exclusive")
	}
	if a.adminToken != "" {
		return []string{a.adminToken}, nil
	}
	return readTokens("--admin-token-file", a.adminTokenFile, false)
}

// readTokens reads bearer tokens from path: one per line when many is set,
// else the whole trimmed file. A token never appears in an error.
func readTokens(flagName, path string, many bool) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	var tokens []string
	if many {
		for line := range strings.Lines(string(raw)) {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				tokens = append(tokens, t)
			}
		}
	} else if t := strings.TrimSpace(string(raw)); t != "" {
		tokens = []string{t}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s: %s holds no token", flagName, path)
	}
	return tokens, nil
}

// tlsConfig builds the public listeners' TLS config, or nil without
// --tls-cert-file.
func (a *authFlags) tlsConfig() (*tls.Config, error) {
	if a.tlsCert == "" && a.tlsKey == "" {
		if a.tlsCA != "" {
			return nil, errors.New("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.tlsCA != "" {
		pem, err := os.ReadFile(a.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("--tls-client-ca-file: no PEM certificate found")
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven // the API requires one; probes need none
	}
	return cfg, nil
}

// validator builds the token validator from --jwt-* flags and --config;
// without any issuer the node validates no tokens.
func (a *authFlags) validator(cfg *node.Config, given map[string]bool) error {
	var specs []issuerSpec
	if a.configFile != "" {
		file, err := readConfigFile(a.configFile)
		if err != nil {
			return err
		}
		specs = file.Issuers
		if file.JWTMaxBytes > 0 && !given["jwt-max-bytes"] {
			a.jwtMaxBytes = file.JWTMaxBytes
		}
	}
	if spec, ok, err := a.issuer.spec(); err != nil {
		return err
	} else if ok {
		specs = append(specs, spec)
	}
	if len(specs) == 0 {
		return nil
	}
	issuers := make([]auth.Issuer, 0, len(specs))
	for _, s := range specs {
		is, err := s.build()
		if err != nil {
			return err
		}
		issuers = append(issuers, is)
	}
	v, err := auth.NewValidator(issuers, a.jwtMaxBytes, nil)
	if err != nil {
		return err
	}
	cfg.Validator = v
	return nil
}

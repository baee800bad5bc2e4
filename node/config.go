// Package node runs one authnode: it builds the cluster membership, the ring,
// the cache groups, the peer transport and the servers from a Config, and
// owns every goroutine they need (Node.Run).
package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/cluster"
	"github.com/avion/authnode/ring"
	"github.com/avion/authnode/shard"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("node: invalid config")

// Config is everything a node needs. Addresses are host:port; port 0 picks a
// free port (tests).
type Config struct {
	// Name is the member name; unique in the cluster. (Required)
	Name string
	// Version is the build's version, exported as authnode_build_info.
	Version string
	// AdvertiseAddr is the host (no port) other nodes use to reach this one.
	// Empty: the gossip bind host, or the first private address when gossip
	// binds 0.0.0.0.
	AdvertiseAddr string
	// GossipAddr is where memberlist listens (TCP and UDP). Default 0.0.0.0:7946.
	GossipAddr string
	// PeerAddr is where the peer gRPC service listens. Default :9091.
	PeerAddr string
	// GRPCAddr is where the public gRPC API listens. Default :9090.
	GRPCAddr string
	// HTTPAddr serves /healthz, /readyz and /metrics. Default :8080.
	HTTPAddr string
	// Join lists gossip seeds: host:port, dns+a://name:port or
	// dns+srv://_service._proto.name. They are resolved and joined at start
	// and every RejoinInterval. Empty: start a cluster of one.
	Join []string
	// DNSServer is the DNS server (host:port) seed names are looked up in.
	// Empty: the system resolver.
	DNSServer string
	// RejoinInterval is how often seeds are resolved again and members
	// outside this node's view joined, so a healed partition merges.
	// Default 30 s.
	RejoinInterval time.Duration
	// Faults, when set, cuts this node's gossip and peer traffic to chosen
	// addresses: the hook tests and the chaos suite use.
	Faults Faults
	// GossipKey encrypts gossip when set (16, 24 or 32 bytes).
	GossipKey []byte
	// Zone is this node's failure domain, advertised to the others.
	Zone string
	// CacheMaxBytes is this node's cache budget, split evenly across groups;
	// each group gives 1/8 of its share to hot copies. Default 256 MiB.
	CacheMaxBytes int64
	// PeerTimeout bounds a forwarded get. Default 50 ms.
	PeerTimeout time.Duration
	// HotTTL bounds a hot copy's life. Default 2 s.
	HotTTL time.Duration
	// MaxMembers is the largest cluster the ring is validated for. Default 1024.
	MaxMembers int
	// SettleTime is how long the ring must stay unchanged before the node
	// reports ready. Default 2 s.
	SettleTime time.Duration
	// ShutdownTimeout bounds the graceful part of shutdown (leave, draining
	// servers). Default 10 s.
	ShutdownTimeout time.Duration
	// LeaveGrace is how long a leaving node keeps answering peers after its
	// Leave has spread, while the others swap in a ring without it. Default
	// 1 s.
	LeaveGrace time.Duration
	// SkipLeave makes shutdown skip the gossip Leave, so the others must
	// detect the failure, as after a crash. For failure tests.
	SkipLeave bool
	// Timing holds the failure-detection timings. Default cluster.LANTiming.
	Timing cluster.Timing
	// Groups are the cache groups this node serves, besides auth's.
	Groups []GroupSpec
	// Source is the source of truth for auth; when set the node serves
	// authorization decisions from the users group (see Node.Authorize).
	Source auth.Source
	// InvalidateTimeout bounds waiting for members to acknowledge an
	// invalidation. Default 500 ms.
	InvalidateTimeout time.Duration
	// Logger is the node's logger. Default: JSON to stderr.
	Logger *slog.Logger
	// Now reads the wall clock; the node's generation clock is built on it.
	// Default time.Now.
	Now func() time.Time
	// MaxPause is the longest the process may stop running before its cache
	// is flushed on the next request (it may have missed invalidations).
	// Default: memberlist's suspicion timeout, SuspicionMult·ProbeInterval.
	MaxPause time.Duration
	// MaxSilence is how long the node may reach no peer before its cache is
	// flushed on the next contact (it may have missed invalidations).
	// Default: twice memberlist's suspicion timeout.
	MaxSilence time.Duration
	// Mono reads the monotonic clock pause detection uses. Default: the
	// process's own; tests simulate a pause by making it jump.
	Mono func() time.Duration

	// Validator checks JWTs; nil: ValidateToken answers unavailable. The
	// node runs and closes the JWKS of its issuers.
	Validator *auth.Validator
	// TokenCache sizes the validation cache (this node's memory only).
	TokenCache auth.TokenCacheConfig
	// AuthTTL bounds how long a user's policy, an API key or a session is
	// cached: the most a member cut off from every invalidation can serve
	// an old answer. Default 1 min.
	AuthTTL time.Duration
	// WatermarkSync is how often the revocation watermarks are read again
	// from the source, as a second channel besides the peer push. Default
	// 10 s.
	WatermarkSync time.Duration
	// ChangePoll is how often a polled change feed (SQLite's) is read;
	// PostgreSQL pushes its changes. Default 1 s.
	ChangePoll time.Duration
	// MaxTokenLifetime is the least time a watermark is kept. A watermark
	// W revokes tokens issued before W, which stop validating by W plus
	// their issuer's longest lifetime plus its leeway: the node keeps
	// watermarks for the longest of this and every issuer's lifetime plus
	// leeway. Default 24 h.
	MaxTokenLifetime time.Duration
	// APITokens are the bearer tokens accepted for mutating calls
	// (sessions, revocation, invalidation). Without any, mutations are
	// refused unless DevInsecureAPI is set.
	APITokens []string
	// DevInsecureAPI accepts mutating calls without a token. Development
	// only; the node logs a warning.
	DevInsecureAPI bool
	// AdminAddr is the admin listener. Default 127.0.0.1:8081. Without
	// AdminTokens it must be a loopback address.
	AdminAddr string
	// AdminTokens are the bearer tokens the admin API requires.
	AdminTokens []string
	// TLS, when set, serves the public gRPC and HTTP listeners over TLS.
	// With ClientCAs set, the API (/v1/..., the gRPC AuthService) needs a
	// verified client certificate; health, readiness and metrics do not,
	// so probes work: use ClientAuth VerifyClientCertIfGiven.
	TLS *tls.Config
	// CacheMode is cluster (the ring: one owner per key), local (each node
	// caches on its own), redis (each node caches on its own in front of
	// Redis as a shared second level: the original plan, for comparison;
	// needs RedisURL) or off (every answer from the source). Gossip,
	// invalidation, JWKS and watermarks work in every mode. Default
	// cluster.
	CacheMode string
	// RedisURL, when set, keeps a copy of cache entries in Redis
	// (redis://[user:password@]host:port/db): read by a new owner before
	// the source, and when an owner does not answer, and one more channel
	// for invalidations. Optional: nothing waits on Redis for long, and
	// Redis trouble never fails a request.
	RedisURL string
}

// Cache modes.
const (
	ModeCluster = "cluster"
	ModeLocal   = "local"
	ModeOff     = "off"
	ModeRedis   = "redis"
)

// Faults decides which traffic a node drops: every gossip packet or
// connection and every peer call to an address it blocks. Production nodes
// have none.
type Faults interface {
	// Blocked reports whether this node may not send to addr (host:port).
	// It must be safe for concurrent use and must not block.
	Blocked(addr string) bool
}

// GroupSpec names a cache group and the loader behind it.
type GroupSpec struct {
	Name   string
	Loader shard.Loader
	// TTL bounds an entry's life; zero means the shard default.
	TTL time.Duration
	// NoHotCopies turns hot copies off: every get on a non-owner asks the
	// owner (benchmarks of the forward path).
	NoHotCopies bool
}

// DefaultConfig returns production defaults for the node named name.
func DefaultConfig(name string) Config {
	return Config{
		Name:              name,
		GossipAddr:        "0.0.0.0:7946",
		PeerAddr:          ":9091",
		GRPCAddr:          ":9090",
		HTTPAddr:          ":8080",
		CacheMaxBytes:     256 << 20,
		PeerTimeout:       50 * time.Millisecond,
		HotTTL:            2 * time.Second,
		MaxMembers:        ring.DefaultConfig().MaxMembers,
		SettleTime:        2 * time.Second,
		ShutdownTimeout:   10 * time.Second,
		LeaveGrace:        time.Second,
		RejoinInterval:    30 * time.Second,
		InvalidateTimeout: 500 * time.Millisecond,
		Timing:            cluster.LANTiming(),
		AuthTTL:           time.Minute,
		WatermarkSync:     10 * time.Second,
		ChangePoll:        time.Second,
		MaxTokenLifetime:  24 * time.Hour,
		AdminAddr:         "127.0.0.1:8081",
		CacheMode:         ModeCluster,
	}
}

// LocalConfig returns a config for a node on 127.0.0.1 with free ports and
// fast timings; for tests.
func LocalConfig(name string) Config {
	c := DefaultConfig(name)
	c.GossipAddr, c.PeerAddr, c.GRPCAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.AdminAddr = "127.0.0.1:0"
	c.ChangePoll = 50 * time.Millisecond
	c.CacheMaxBytes = 16 << 20
	// A loaded test machine (race detector, packages in parallel) can take
	// longer than 50 ms to answer; a forward must not turn into a degraded
	// load then. Failure tests stop nodes, which refuse connections at once.
	c.PeerTimeout = time.Second
	c.SettleTime = 200 * time.Millisecond
	c.ShutdownTimeout = 2 * time.Second
	c.LeaveGrace = 200 * time.Millisecond
	c.RejoinInterval = 500 * time.Millisecond
	c.Timing = cluster.LocalTiming()
	// Far above the loopback suspicion timeout, so that a test machine under
	// load never takes a slow heartbeat for a pause or a slow probe for
	// silence; pause tests jump Mono, isolation tests lower MaxSilence.
	c.MaxPause, c.MaxSilence = 2*time.Second, 2*time.Second
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: node name is required", ErrConfig)
	}
	for flag, addr := range map[string]string{"gossip": c.GossipAddr, "peer": c.PeerAddr, "grpc": c.GRPCAddr, "http": c.HTTPAddr, "admin": c.AdminAddr} {
		if err := checkListenAddr(addr); err != nil {
			return fmt.Errorf("%w: %s address: %w", ErrConfig, flag, err)
		}
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	switch {
	case c.CacheMaxBytes < 1<<20:
		return fmt.Errorf("%w: cache max bytes %d below 1 MiB", ErrConfig, c.CacheMaxBytes)
	case c.PeerTimeout <= 0:
		return fmt.Errorf("%w: peer timeout must be positive", ErrConfig)
	case c.HotTTL <= 0:
		return fmt.Errorf("%w: hot TTL must be positive", ErrConfig)
	case c.RejoinInterval <= 0:
		return fmt.Errorf("%w: rejoin interval must be positive", ErrConfig)
	case c.InvalidateTimeout <= 0:
		return fmt.Errorf("%w: invalidate timeout must be positive", ErrConfig)
	case c.MaxPause < 0 || c.MaxSilence < 0:
		return fmt.Errorf("%w: max pause and max silence must not be negative", ErrConfig)
	case c.SettleTime < 0 || c.ShutdownTimeout < 0 || c.LeaveGrace < 0:
		return fmt.Errorf("%w: settle, shutdown and leave grace times must not be negative", ErrConfig)
	}
	if _, err := cluster.ParseSeeds(strings.Join(c.Join, ",")); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.DNSServer != "" {
		if err := cluster.CheckHostPort(c.DNSServer); err != nil {
			return fmt.Errorf("%w: DNS server: %w", ErrConfig, err)
		}
	}
	if _, err := c.ringConfig(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	names := map[string]bool{auth.GroupUsers: c.Source != nil, auth.GroupAPIKeys: c.Source != nil, auth.GroupSessions: c.Source != nil}
	for _, g := range c.Groups {
		if g.Loader == nil || names[g.Name] {
			return fmt.Errorf("%w: group %q is duplicated or has no loader", ErrConfig, g.Name)
		}
		names[g.Name] = true
	}
	return nil
}

func (c Config) validateAuth() error {
	switch {
	case c.CacheMode == ModeRedis && c.RedisURL == "":
		return fmt.Errorf("%w: cache mode redis needs a Redis URL", ErrConfig)
	case c.CacheMode != ModeCluster && c.CacheMode != ModeLocal && c.CacheMode != ModeOff && c.CacheMode != ModeRedis:
		return fmt.Errorf("%w: cache mode %q: want cluster, local, redis or off", ErrConfig, c.CacheMode)
	case c.AuthTTL <= 0 || c.WatermarkSync <= 0 || c.MaxTokenLifetime <= 0 || c.ChangePoll <= 0:
		return fmt.Errorf("%w: auth TTL, watermark sync, change poll and max token lifetime must be positive", ErrConfig)
	case len(c.AdminTokens) == 0 && !isLoopback(c.AdminAddr):
		return fmt.Errorf("%w: admin address %q is not loopback: set an admin token", ErrConfig, c.AdminAddr)
	}
	for _, t := range append(slices.Clone(c.APITokens), c.AdminTokens...) {
		if len(t) < 16 {
			return fmt.Errorf("%w: API and admin tokens must be at least 16 characters", ErrConfig)
		}
	}
	return nil
}

// isLoopback reports whether the listen address addr binds loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ringConfig sizes the ring for MaxMembers: at least the default partition
// count, and at least 8 partitions per member.
func (c Config) ringConfig() (ring.Config, error) {
	rc := ring.DefaultConfig()
	if c.MaxMembers < 1 {
		return rc, fmt.Errorf("max members %d < 1", c.MaxMembers)
	}
	rc.MaxMembers = c.MaxMembers
	rc.PartitionCount = max(rc.PartitionCount, 8*c.MaxMembers+1)
	return rc, rc.Validate()
}

// checkListenAddr accepts host:port where host may be empty and port 0.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be 0-65535", addr)
	}
	return nil
}

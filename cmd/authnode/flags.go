package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/avion/authnode/cluster"
	"github.com/avion/authnode/node"
)

// serveFlags holds authnode serve's flags; every flag --some-name can also
// be set with the environment variable AUTHNODE_SOME_NAME.
type serveFlags struct {
	fs              *flag.FlagSet
	name            string
	advertise       string
	gossipAddr      string
	peerAddr        string
	grpcAddr        string
	httpAddr        string
	join            string
	dnsServer       string
	rejoinInterval  time.Duration
	cacheMaxBytes   size
	peerTimeout     time.Duration
	hotTTL          time.Duration
	maxMembers      int
	gossipKeyFile   string
	zone            string
	shutdownTimeout time.Duration
	maxPause        time.Duration
	logLevel        slog.Level
	auth            authFlags
	given           map[string]bool // flags set on the command line or in the environment
}

func newServeFlags() *serveFlags {
	d := node.DefaultConfig("")
	f := &serveFlags{fs: flag.NewFlagSet("authnode serve", flag.ContinueOnError), cacheMaxBytes: size(d.CacheMaxBytes)}
	host, _ := os.Hostname()
	fs := f.fs
	fs.StringVar(&f.name, "node-name", host, "this node's member name, unique in the cluster (default: the hostname)")
	fs.StringVar(&f.advertise, "advertise-addr", "", "host that peers use to reach this node (default: the gossip bind host, or the first private address when binding 0.0.0.0)")
	fs.StringVar(&f.gossipAddr, "gossip-addr", d.GossipAddr, "gossip listen address (TCP and UDP)")
	fs.StringVar(&f.peerAddr, "peer-addr", d.PeerAddr, "peer gRPC listen address (keep it inside the cluster)")
	fs.StringVar(&f.grpcAddr, "grpc-addr", d.GRPCAddr, "public gRPC listen address")
	fs.StringVar(&f.httpAddr, "http-addr", d.HTTPAddr, "HTTP listen address: /healthz, /readyz, /metrics")
	fs.StringVar(&f.join, "join", "", "comma-separated gossip seeds: host:port, dns+a://name:port, dns+srv://_service._proto.name (empty: start a new cluster)")
	fs.StringVar(&f.dnsServer, "dns-server", "", "DNS server (host:port) for seed names (default: the system resolver)")
	fs.DurationVar(&f.rejoinInterval, "rejoin-interval", d.RejoinInterval, "how often seeds are resolved again and members outside this node's view joined")
	fs.Var(&f.cacheMaxBytes, "cache-max-bytes", "cache budget of this node, split across groups (accepts 512MiB, 1GiB)")
	fs.DurationVar(&f.peerTimeout, "peer-timeout", d.PeerTimeout, "how long a forwarded get waits for the owner before loading locally")
	fs.DurationVar(&f.hotTTL, "hot-ttl", d.HotTTL, "lifetime of a hot copy of a key owned by another node")
	fs.IntVar(&f.maxMembers, "max-members", d.MaxMembers, "largest cluster the ring is sized for")
	fs.StringVar(&f.gossipKeyFile, "gossip-key-file", "", "file holding a base64 AES key (16, 24 or 32 bytes) that encrypts gossip")
	fs.StringVar(&f.zone, "zone", "", "this node's failure domain, advertised to peers")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "bound on the graceful part of shutdown")
	fs.DurationVar(&f.maxPause, "max-pause", 0, "a process pause longer than this flushes the cache before the next answer (0: the gossip suspicion timeout, 4s)")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	f.addAuthFlags()
	return f
}

// parse reads args, then the AUTHNODE_* environment for flags not given.
func (f *serveFlags) parse(args []string, env func(string) (string, bool)) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	f.given = map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	var err error
	f.fs.VisitAll(func(fl *flag.Flag) {
		key := envName(fl.Name)
		if v, ok := env(key); ok && !f.given[fl.Name] && err == nil {
			if e := fl.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", key, e)
			}
			f.given[fl.Name] = true
		}
	})
	return err
}

func envName(flagName string) string {
	return "AUTHNODE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// config turns the flags into a node config (without its source, which
// serve opens). env reads the environment.
func (f *serveFlags) config(logger *slog.Logger, env func(string) (string, bool)) (node.Config, error) {
	cfg := node.DefaultConfig(f.name)
	cfg.AdvertiseAddr, cfg.GossipAddr, cfg.PeerAddr = f.advertise, f.gossipAddr, f.peerAddr
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.Zone = f.grpcAddr, f.httpAddr, f.zone
	cfg.CacheMaxBytes, cfg.PeerTimeout, cfg.HotTTL = int64(f.cacheMaxBytes), f.peerTimeout, f.hotTTL
	cfg.MaxMembers, cfg.ShutdownTimeout, cfg.Logger = f.maxMembers, f.shutdownTimeout, logger
	seeds, err := cluster.ParseSeeds(f.join)
	if err != nil {
		return cfg, fmt.Errorf("--join: %w", err)
	}
	for _, s := range seeds {
		cfg.Join = append(cfg.Join, s.String())
	}
	cfg.DNSServer, cfg.RejoinInterval, cfg.MaxPause = f.dnsServer, f.rejoinInterval, f.maxPause
	if f.gossipKeyFile != "" {
		if cfg.GossipKey, err = readKeyFile(f.gossipKeyFile); err != nil {
			return cfg, err
		}
	}
	if err := f.auth.apply(&cfg, env, f.given); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// readKeyFile reads a base64 gossip key. The key itself never appears in an
// error message.
func readKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, errors.New("--gossip-key-file: not valid base64")
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("--gossip-key-file: key is %d bytes, want 16, 24 or 32", n)
	}
	return key, nil
}

// size is a byte count that accepts units: 1048576, 512KiB, 512MiB, 1GiB,
// 500MB, 1GB.
type size int64

var units = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

func (s *size) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *size) Set(v string) error {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("size %q: want a positive number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", v)
	}
	*s = size(n * mult)
	return nil
}

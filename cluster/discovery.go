package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Resolver looks names up in DNS; *net.Resolver implements it. authnode
// resolves seed names itself, so tests and deployments can point it at their
// own DNS server, and hands memberlist IP addresses only.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// ErrSeed marks a seed that cannot be parsed.
var ErrSeed = errors.New("cluster: bad seed")

// seedKind says how a seed is turned into addresses.
type seedKind int

const (
	seedHostPort seedKind = iota // host:port; a host name is looked up (A/AAAA)
	seedA                        // dns+a://name:port: every address of name
	seedSRV                      // dns+srv://_service._proto.name: every target and port
)

// Seed is one parsed --join entry.
type Seed struct {
	kind seedKind
	host string
	port string
	raw  string
}

func (s Seed) String() string { return s.raw }

// ParseSeeds parses comma-separated seeds: host:port, dns+a://name:port and
// dns+srv://_service._proto.name, in any mix. Blank entries are skipped.
func ParseSeeds(spec string) ([]Seed, error) {
	var out []Seed
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		s, err := parseSeed(part)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSeed(raw string) (Seed, error) {
	switch {
	case strings.HasPrefix(raw, "dns+a://"):
		hp := strings.TrimPrefix(raw, "dns+a://")
		if err := CheckHostPort(hp); err != nil {
			return Seed{}, fmt.Errorf("%w: %s: %w", ErrSeed, raw, err)
		}
		host, port, _ := net.SplitHostPort(hp)
		return Seed{kind: seedA, host: host, port: port, raw: raw}, nil
	case strings.HasPrefix(raw, "dns+srv://"):
		name := strings.TrimPrefix(raw, "dns+srv://")
		if name == "" || strings.ContainsAny(name, ":/ ") || !strings.HasPrefix(name, "_") {
			return Seed{}, fmt.Errorf("%w: %s: want dns+srv://_service._proto.name", ErrSeed, raw)
		}
		return Seed{kind: seedSRV, host: name, raw: raw}, nil
	case strings.Contains(raw, "://"):
		return Seed{}, fmt.Errorf("%w: %s: the scheme is not dns+a or dns+srv", ErrSeed, raw)
	}
	if err := CheckHostPort(raw); err != nil {
		return Seed{}, fmt.Errorf("%w: %w", ErrSeed, err)
	}
	host, port, _ := net.SplitHostPort(raw)
	return Seed{kind: seedHostPort, host: host, port: port, raw: raw}, nil
}

// resolve turns seeds into IP:port addresses, sorted and without duplicates.
// A seed whose lookup fails or comes back empty is skipped; the error lists
// every such seed, so callers can log it and keep their current peers.
func resolve(ctx context.Context, r Resolver, seeds []Seed) ([]string, error) {
	var addrs []string
	var errs []error
	for _, s := range seeds {
		got, err := resolveSeed(ctx, r, s)
		if err == nil && len(got) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		addrs = append(addrs, got...)
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), errors.Join(errs...)
}

func resolveSeed(ctx context.Context, r Resolver, s Seed) ([]string, error) {
	switch s.kind {
	case seedSRV:
		_, records, err := r.LookupSRV(ctx, "", "", s.host)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rec := range records {
			ips, err := lookupIPs(ctx, r, strings.TrimSuffix(rec.Target, "."))
			if err != nil {
				continue // one bad target does not hide the others
			}
			for _, ip := range ips {
				out = append(out, net.JoinHostPort(ip, strconv.Itoa(int(rec.Port))))
			}
		}
		return out, nil
	default:
		ips, err := lookupIPs(ctx, r, s.host)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(ips))
		for i, ip := range ips {
			out[i] = net.JoinHostPort(ip, s.port)
		}
		return out, nil
	}
}

// lookupIPs returns host itself when it is an IP literal.
func lookupIPs(ctx context.Context, r Resolver, host string) ([]string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []string{ip.String()}, nil
	}
	return r.LookupHost(ctx, host)
}

// NewResolver returns a resolver that asks the DNS server at addr
// (host:port), or the system's resolver when addr is empty.
func NewResolver(addr string) (Resolver, error) {
	if addr == "" {
		return net.DefaultResolver, nil
	}
	if err := CheckHostPort(addr); err != nil {
		return nil, fmt.Errorf("cluster: DNS server: %w", err)
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}

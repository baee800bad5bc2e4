package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer is an authoritative DNS server on 127.0.0.1 whose A and SRV
// records a test can change while nodes resolve them.
type dnsServer struct {
	addr    string
	queries atomic.Int64
	mu      sync.Mutex
	a       map[string][]string // name → IPs
	srv     map[string][]*net.SRV
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	s := &dnsServer{a: map[string][]string{}, srv: map[string][]*net.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = pc.LocalAddr().String()
	started := make(chan struct{})
	server := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	done := make(chan error, 1)
	go func() { done <- server.ActivateAndServe() }()
	<-started
	t.Cleanup(func() {
		_ = server.Shutdown()
		if err := <-done; err != nil {
			t.Logf("test DNS server: %v", err)
		}
	})
	return s
}

func (s *dnsServer) set(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[dns.Fqdn(name)] = ips
}

func (s *dnsServer) setSRV(name string, records ...*net.SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[dns.Fqdn(name)] = records
}

func (s *dnsServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	for _, q := range req.Question {
		switch q.Qtype {
		case dns.TypeA:
			for _, ip := range s.a[q.Name] {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: net.ParseIP(ip)})
			}
		case dns.TypeSRV:
			for _, r := range s.srv[q.Name] {
				m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 0},
					Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: dns.Fqdn(r.Target)})
			}
		}
	}
	s.mu.Unlock()
	_ = w.WriteMsg(m)
}

func (s *dnsServer) resolver(t *testing.T) Resolver {
	t.Helper()
	r, err := NewResolver(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseSeeds(t *testing.T) {
	seeds, err := ParseSeeds(" 10.0.0.1:7946, dns+a://authnode.ns.svc:7946,dns+srv://_gossip._tcp.authnode.ns.svc ,")
	if err != nil || len(seeds) != 3 || seeds[0].kind != seedHostPort || seeds[1].kind != seedA || seeds[2].kind != seedSRV {
		t.Fatalf("ParseSeeds = %+v, %v", seeds, err)
	}
	for _, bad := range []string{"host", "h:0", "dns+a://name", "dns+a://:7946", "dns+srv://", "dns+srv://plain.name", "dns+srv://_g._tcp.x:1", "http://x:1", "consul://x"} {
		if _, err := ParseSeeds(bad); !errors.Is(err, ErrSeed) {
			t.Errorf("ParseSeeds(%q) = %v, want ErrSeed", bad, err)
		}
	}
}

func TestResolveSeeds(t *testing.T) {
	d := startDNS(t)
	d.set("pods.test", "10.0.0.1", "10.0.0.2")
	d.set("pod-3.test", "10.0.0.3")
	d.setSRV("_gossip._tcp.svc.test", &net.SRV{Target: "pod-3.test", Port: 8000}, &net.SRV{Target: "missing.test", Port: 8001})
	seeds, err := ParseSeeds("dns+a://pods.test:7946,dns+srv://_gossip._tcp.svc.test,10.0.0.9:7,dns+a://empty.test:1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := resolve(ctx, d.resolver(t), seeds)
	want := "10.0.0.1:7946 10.0.0.2:7946 10.0.0.3:8000 10.0.0.9:7"
	if strings.Join(got, " ") != want {
		t.Fatalf("resolve = %v, want %s", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "empty.test") {
		t.Fatalf("the empty lookup was not reported: %v", err)
	}
}

// TestDNSDiscovery: two nodes find each other through SRV records served by
// a test DNS server. A third node that started alone is joined once its
// record appears (periodic re-resolution), and an empty answer later keeps
// every member.
func TestDNSDiscovery(t *testing.T) {
	d := startDNS(t)
	start := func(name string, seeds ...string) *Cluster {
		cfg := LocalConfig(name)
		cfg.Meta.PeerAddr = "127.0.0.1:9"
		cfg.Logger = testLogger(t)
		cfg.Resolver = d.resolver(t)
		cfg.Join = seeds
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown() })
		return c
	}
	publish := func(ns ...*Cluster) {
		var recs []*net.SRV
		for _, n := range ns {
			host, port, _ := net.SplitHostPort(n.GossipAddr())
			name := "pod-" + port + ".authnode.test"
			d.set(name, host)
			recs = append(recs, &net.SRV{Target: name, Port: uint16(atoiT(t, port))})
		}
		d.setSRV("_gossip._tcp.authnode.test", recs...)
	}
	const seed = "dns+srv://_gossip._tcp.authnode.test"
	nodes := []*Cluster{start("dns-0", seed), start("dns-1", seed)}
	loner := start("dns-2") // no seeds: a cluster of its own
	publish(nodes...)
	took := eventually(t, 15*time.Second, "two nodes to meet through DNS", func() bool { return agree(nodes, 2) })
	t.Logf("two nodes met through SRV records in %v", took)
	nodes = append(nodes, loner)
	publish(nodes...)
	took = eventually(t, 15*time.Second, "the node added to DNS later", func() bool { return agree(nodes, 3) })
	t.Logf("a node added to DNS was joined in %v", took)

	d.setSRV("_gossip._tcp.authnode.test")
	asked := d.queries.Load()
	eventually(t, 15*time.Second, "rounds that get the empty answer", func() bool { return d.queries.Load() >= asked+6 })
	if !agree(nodes, 3) {
		t.Fatal("an empty DNS answer dropped members")
	}
	for _, n := range nodes[:2] {
		if !n.Joined() {
			t.Fatalf("%s does not report joined", n.cfg.Name)
		}
	}
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := net.LookupPort("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDNSADiscovery: nodes on 127.0.0.2 and 127.0.0.3 share one gossip port,
// as pods behind a headless Service do, and find each other through the A
// records of one name.
func TestDNSADiscovery(t *testing.T) {
	d := startDNS(t)
	port := freeUDPAndTCPPort(t, "127.0.0.2", "127.0.0.3")
	var nodes []*Cluster
	for i, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		cfg := LocalConfig(fmt.Sprintf("a-%d", i))
		cfg.BindAddr, cfg.BindPort = ip, port
		cfg.Meta.PeerAddr = ip + ":9"
		cfg.Logger = testLogger(t)
		cfg.Resolver = d.resolver(t)
		cfg.Join = []string{fmt.Sprintf("dns+a://authnode.test:%d", port)}
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown() })
		nodes = append(nodes, c)
	}
	d.set("authnode.test", "127.0.0.2", "127.0.0.3")
	took := eventually(t, 15*time.Second, "the nodes to meet through A records", func() bool { return agree(nodes, 2) })
	t.Logf("two nodes met through A records in %v", took)
}

// freeUDPAndTCPPort finds a port free for TCP and UDP on every ip.
func freeUDPAndTCPPort(t *testing.T, ips ...string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if portFree(ips, port) {
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

func portFree(ips []string, port int) bool {
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, fmt.Sprint(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		_ = l.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		_ = pc.Close()
	}
	return true
}

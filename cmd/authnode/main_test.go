package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{nil, 2, "", "Usage:"},
		{[]string{"help"}, 0, "Commands:", ""},
		{[]string{"version"}, 0, "authnode dev", ""},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"serve", "--help"}, 0, "-cache-max-bytes", ""},
		{[]string{"serve", "--no-such-flag"}, 2, "", "flag provided but not defined"},
		{[]string{"serve", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"serve", "--join", "nohost"}, 2, "", "--join"},
		{[]string{"serve", "--join", "consul://x:1"}, 2, "", "scheme"},
		{[]string{"serve", "--join", "dns+srv://plain"}, 2, "", "dns+srv"},
		{[]string{"serve", "--dns-server", "nowhere"}, 2, "", "DNS server"},
		{[]string{"serve", "--join", "h:70000"}, 2, "", "port"},
		{[]string{"serve", "--peer-addr", "127.0.0.1:99999"}, 2, "", "peer address"},
		{[]string{"serve", "--cache-max-bytes", "lots"}, 2, "", "cache-max-bytes"},
		{[]string{"serve", "--cache-max-bytes", "-5MiB"}, 2, "", "cache-max-bytes"},
		{[]string{"serve", "--peer-timeout", "soon"}, 2, "", "peer-timeout"},
		{[]string{"serve", "--node-name", ""}, 2, "", "node name"},
		{[]string{"serve", "--gossip-key-file", "/nonexistent"}, 2, "", "gossip-key-file"},
		{[]string{"serve", "--log-level", "LOUD"}, 2, "", "log-level"},
		{[]string{"serve", "--max-pause", "-1s"}, 2, "", "max pause"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.errOut) {
			t.Errorf("run(%q) = %d, stdout %.200q, stderr %.200q", tc.args, code, out.String(), errOut.String())
		}
		if code == 2 && len(tc.args) > 1 && strings.Count(strings.TrimSpace(errOut.String()), "\n") > 0 {
			t.Errorf("run(%q): error is not one line: %q", tc.args, errOut.String())
		}
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "512MiB": 512 << 20, "1GiB": 1 << 30, "500MB": 500e6, "64 KiB": 64 << 10, "7B": 7} {
		var s size
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("size %q = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5GiB", "GiB", "1 PB", "99999999999999GiB"} {
		var s size
		if err := s.Set(in); err == nil {
			t.Errorf("size %q accepted as %d", in, s)
		}
	}
}

func TestEnvironmentFillsUnsetFlags(t *testing.T) {
	env := map[string]string{
		"AUTHNODE_GOSSIP_ADDR":     "127.0.0.1:7000",
		"AUTHNODE_PEER_TIMEOUT":    "75ms",
		"AUTHNODE_CACHE_MAX_BYTES": "1GiB",
		"AUTHNODE_JOIN":            "10.0.0.1:7946,10.0.0.2:7946",
	}
	f := newServeFlags()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := f.parse([]string{"--peer-timeout", "20ms"}, lookup); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(nil, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GossipAddr != "127.0.0.1:7000" || cfg.CacheMaxBytes != 1<<30 || len(cfg.Join) != 2 {
		t.Fatalf("environment not applied: %+v", cfg)
	}
	if cfg.PeerTimeout.Milliseconds() != 20 {
		t.Fatalf("the flag should win over the environment: %v", cfg.PeerTimeout)
	}
	env["AUTHNODE_MAX_MEMBERS"] = "many"
	if err := newServeFlags().parse(nil, lookup); err == nil || !strings.Contains(err.Error(), "AUTHNODE_MAX_MEMBERS") {
		t.Fatalf("bad environment value: %v", err)
	}
}

func TestGossipKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	if key, err := readKeyFile(write("good", secret+"\n")); err != nil || string(key) != "0123456789abcdef" {
		t.Fatalf("readKeyFile = %q, %v", key, err)
	}
	short := base64.StdEncoding.EncodeToString([]byte("short-key"))
	for name, content := range map[string]string{"short": short, "notb64": "!!" + secret} {
		_, err := readKeyFile(write(name, content))
		if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), short) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

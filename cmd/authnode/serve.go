package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/avion/authnode/ring"
	"github.com/avion/authnode/shard"
)

// serve builds a node from the embedded defaults. The network layer
// (membership, peer transport, public APIs) is not built yet, so it checks
// the configuration, reports what is ready and what is not, and exits.
func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authnode serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, _ := os.Hostname()
	name := fs.String("node-name", envOr("AUTHNODE_NODE_NAME", host), "this node's member name (env AUTHNODE_NODE_NAME; default: hostname)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: authnode serve [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "authnode serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := checkDefaults(*name); err != nil {
		fmt.Fprintf(stderr, "authnode serve: %v\n", err)
		return 1
	}
	rc := ring.DefaultConfig()
	fmt.Fprintf(stdout, "authnode %s: node %q\n", version, *name)
	fmt.Fprintf(stdout, "ready:     ring (%d partitions, up to %d members), owner shards, hot copies, invalidation\n",
		rc.PartitionCount, rc.MaxMembers)
	fmt.Fprintln(stdout, "not built: gossip membership, peer gRPC transport, public APIs; nothing is served yet")
	return 0
}

// checkDefaults builds the ring and cache a node starts with.
func checkDefaults(name string) error {
	r, err := ring.New(ring.DefaultConfig())
	if err != nil {
		return err
	}
	if _, err := r.SetMembers([]string{name}); err != nil {
		return err
	}
	if err := shard.DefaultConfig(name).Validate(); err != nil {
		return err
	}
	return shard.DefaultGroupConfig().Validate()
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

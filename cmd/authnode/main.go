// Command authnode runs one node of the authnode cache tier.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

func main() {
	// go-redis logs every failed dial to its own process-wide logger;
	// the fallback's circuit breaker already reports Redis trouble once.
	redis.SetLogger(&logging.VoidLogger{})
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `authnode — the cache tier of the avion auth service

Usage:
  authnode <command> [flags]

Commands:
  serve     run a node until SIGTERM (see authnode serve --help)
  policy    import or export the policy: users, roles, permissions, API keys
  token     mint a development token (authnode token mint --dev)
  version   print the version
  help      print this help
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run executes one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "authnode", version)
		return 0
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "policy":
		return policy(args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "authnode: unknown command %q (run authnode help)\n", args[0])
		return 2
	}
}

// oneLine renders err on one line: some errors (the YAML decoder's, the
// PostgreSQL driver's) span several, and a command's error is one line.
func oneLine(err error) string {
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

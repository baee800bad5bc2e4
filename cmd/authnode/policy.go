package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/avion/authnode/store"
)

const defaultSource = "sqlite://./data/authnode.db"

// policy runs `authnode policy import|export`, which load and dump users,
// roles, permissions and API keys so that a policy can live in git.
func policy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "import" && args[0] != "export") {
		fmt.Fprintln(stderr, "authnode policy: want import or export (authnode policy import --source URL [--replace] FILE.yaml | export --source URL)")
		return 2
	}
	fs := flag.NewFlagSet("authnode policy "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	source := fs.String("source", envOr("AUTHNODE_SOURCE", defaultSource), "source of truth: sqlite://PATH or postgres://… (env AUTHNODE_SOURCE)")
	replace := fs.Bool("replace", false, "import: make the store equal the file (users missing from it are disabled and their tokens revoked)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintf(stdout, "Usage: authnode policy %s [flags]%s\n\nFlags:\n", args[0], map[bool]string{true: " FILE.yaml", false: ""}[args[0] == "import"])
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "authnode policy %s: %s\n", args[0], oneLine(err))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	switch {
	case args[0] == "import":
		err = importPolicy(ctx, *source, *replace, fs.Args(), stdout)
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	default:
		err = exportPolicy(ctx, *source, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "authnode policy %s: %s\n", args[0], oneLine(err))
		return 1
	}
	return 0
}

func importPolicy(ctx context.Context, source string, replace bool, files []string, stdout io.Writer) error {
	if len(files) != 1 {
		return errors.New("want exactly one policy file")
	}
	f, err := os.Open(files[0])
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := store.DecodePolicy(f)
	if err != nil {
		return fmt.Errorf("%s: %w", files[0], err)
	}
	s, err := openSource(ctx, source)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.ImportPolicy(ctx, p, replace, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d roles, %d users, %d API keys\n", len(p.Roles), len(p.Users), len(p.APIKeys))
	return nil
}

func exportPolicy(ctx context.Context, source string, stdout io.Writer) error {
	s, err := openSource(ctx, source)
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := s.ExportPolicy(ctx)
	if err != nil {
		return err
	}
	return p.Encode(stdout)
}

// openSource opens the store, creating the directory of a SQLite file.
func openSource(ctx context.Context, source string) (*store.Store, error) {
	if dir, ok := store.SQLiteDir(source); ok {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
	}
	return store.Open(ctx, source)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

package redisfallback

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("redisfallback: invalid config")

// Config configures a Fallback. Zero values take the defaults below;
// negative values are errors.
type Config struct {
	// URL names the server: redis://[user:pass@]host:port/db or rediss://
	// for TLS (see redis.ParseURL). (Required) The password never appears
	// in errors or logs.
	URL string

	// Prefix starts every key this package writes, so one Redis can serve
	// several clusters. Default "authnode:".
	Prefix string

	// OpTimeout bounds every read, write, delete, publish and ping,
	// including the dial. It is the most a load waits for Redis. Default
	// 25 ms.
	OpTimeout time.Duration

	// FailuresToOpen is how many consecutive failures open the circuit
	// breaker. Default 3.
	FailuresToOpen int

	// RetryInterval is how often the open breaker pings Redis and how often
	// a failed delete is retried. Default 500 ms.
	RetryInterval time.Duration

	// QueueSize bounds the writes waiting to be sent; a write that finds the
	// queue full is dropped and counted. It also bounds pending deletes (see
	// the package doc). Default 10,000.
	QueueSize int

	// Logger receives breaker transitions. Default: discard.
	Logger *slog.Logger

	// Now reads the wall clock for expiry. Default time.Now.
	Now func() time.Time

	// Observe, when set, is told of every command sent to Redis (a
	// pipeline counts as one, named "pipeline"): its lower-case name, how
	// long it took, and whether it failed (a missing key is no failure).
	// Pub/sub traffic is not included. It must not block.
	Observe func(command string, d time.Duration, failed bool)
}

// DefaultConfig returns production defaults for the server at url.
func DefaultConfig(url string) Config {
	return Config{
		URL:            url,
		Prefix:         "authnode:",
		OpTimeout:      25 * time.Millisecond,
		FailuresToOpen: 3,
		RetryInterval:  500 * time.Millisecond,
		QueueSize:      10000,
	}
}

// Validate reports the first invalid field. It parses URL but does not
// connect.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return fmt.Errorf("%w: URL is required", ErrConfig)
	case c.OpTimeout < 0:
		return fmt.Errorf("%w: op timeout %v is negative", ErrConfig, c.OpTimeout)
	case c.FailuresToOpen < 0:
		return fmt.Errorf("%w: failures to open %d is negative", ErrConfig, c.FailuresToOpen)
	case c.RetryInterval < 0:
		return fmt.Errorf("%w: retry interval %v is negative", ErrConfig, c.RetryInterval)
	case c.QueueSize < 0:
		return fmt.Errorf("%w: queue size %d is negative", ErrConfig, c.QueueSize)
	}
	_, err := parseURL(c.URL)
	return err
}

func (c Config) withDefaults() Config {
	d := DefaultConfig(c.URL)
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = d.OpTimeout
	}
	if c.FailuresToOpen == 0 {
		c.FailuresToOpen = d.FailuresToOpen
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = d.RetryInterval
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// clientOptions turns the config into go-redis options that never let a
// caller wait longer than OpTimeout: no command retries, one dial attempt,
// and every socket and pool wait bounded.
func (c Config) clientOptions() (*redis.Options, error) {
	opts, err := parseURL(c.URL)
	if err != nil {
		return nil, err
	}
	opts.DialTimeout = c.OpTimeout
	opts.ReadTimeout = c.OpTimeout
	opts.WriteTimeout = c.OpTimeout
	opts.PoolTimeout = c.OpTimeout
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1        // a retry would double the wait; the breaker decides
	opts.DialerRetries = 1      // one attempt; a failed dial is a failure
	opts.PipelinePoolSize = -1  // one pool: pipelines share the main one
	opts.DisableIdentity = true // no CLIENT SETINFO round trip on connect
	if opts.Protocol == 0 {
		opts.Protocol = 2 // plain replies; pub/sub needs no push handling
	}
	return opts, nil
}

// parseURL parses a Redis URL. Its errors never contain the URL's password:
// net/url echoes the whole input in its errors, so only the reason is kept,
// and dropped too if it contains the userinfo.
func parseURL(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	if err == nil {
		return opts, nil
	}
	reason := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		reason = ue.Err.Error()
	}
	if leaks(reason, userinfo(raw)) {
		reason = "unparsable"
	}
	return nil, fmt.Errorf("%w: malformed URL %s: %s", ErrConfig, redacted(raw), reason)
}

// userinfo returns what stands between "scheme://" and the last '@' of the
// authority, or "".
func userinfo(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest = raw
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		return rest[:i]
	}
	return ""
}

// leaks reports whether s contains the userinfo info (if any) or its
// password part.
func leaks(s, info string) bool {
	if info == "" {
		return false
	}
	_, pass, _ := strings.Cut(info, ":")
	return strings.Contains(s, info) || (pass != "" && strings.Contains(s, pass))
}

// redacted returns the scheme and host of raw, or a placeholder when raw
// does not parse: never the userinfo, path or query (a misplaced password
// can end up in any of them).
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || leaks(u.Host, userinfo(raw)) {
		return "(not shown)"
	}
	return u.Scheme + "://" + u.Host
}

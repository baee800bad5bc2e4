package redisfallback

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// timing is a go-redis hook that reports every command to Config.Observe.
type timing func(command string, d time.Duration, failed bool)

func (t timing) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t timing) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		t(cmd.Name(), time.Since(start), failedCommand(err))
		return err
	}
}

func (t timing) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		t("pipeline", time.Since(start), failedCommand(err))
		return err
	}
}

// failedCommand reports whether err is a failure: redis.Nil (no such key)
// is an answer.
func failedCommand(err error) bool { return err != nil && !errors.Is(err, redis.Nil) }

package redisfallback

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Publish sends msg to the other instances on channel
// Prefix+"invalidations", best effort: it never blocks, and a message is
// dropped (and counted) while the breaker is open or when too many wait.
// Instances that are not subscribed at that moment never see it. Publish
// keeps no reference to msg.
func (f *Fallback) Publish(msg []byte) {
	if !f.usable() {
		f.n.publishDrops.Add(1)
		return
	}
	select {
	case f.pubs <- encodeMessage(f.id, msg):
	default:
		f.n.publishDrops.Add(1)
	}
}

// publish sends one message; it runs on the writer.
func (f *Fallback) publish(ctx context.Context, msg []byte) {
	if !f.usable() {
		f.n.publishDrops.Add(1)
		return
	}
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	if err := f.client.Publish(octx, f.channel, msg).Err(); err != nil {
		f.n.publishDrops.Add(1)
		f.failed(ctx, "publish", err)
		return
	}
	f.br.success()
	f.n.published.Add(1)
}

// subscribe delivers messages from other instances to onMessage until ctx
// ends, subscribing again RetryInterval after each lost subscription.
// Messages published while no subscription is up are lost.
func (f *Fallback) subscribe(ctx context.Context, onMessage func([]byte)) {
	for {
		f.listen(ctx, onMessage)
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.cfg.RetryInterval):
		}
	}
}

// listen runs one subscription until it fails, looks dead or ctx ends. The
// connection is checked with a PING after a quiet interval; no answer in the
// next interval (a hung server) ends the subscription. Closing the PubSub
// when ctx ends unblocks a pending read.
func (f *Fallback) listen(ctx context.Context, onMessage func([]byte)) {
	ps := f.client.Subscribe(ctx, f.channel)
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = ps.Close()
		close(closed)
	})
	defer func() {
		if stop() {
			_ = ps.Close()
		} else {
			<-closed // ctx ended: wait for the close already under way
		}
	}()
	quiet := f.healthInterval()
	pinged := false
	for ctx.Err() == nil {
		m, err := ps.ReceiveTimeout(ctx, quiet)
		switch {
		case err == nil:
			pinged = false
			f.deliver(m, onMessage)
		case isTimeout(err) && !pinged:
			pinged = true
			if ps.Ping(ctx) != nil {
				return
			}
		default:
			return
		}
	}
}

// healthInterval is how long a subscription may stay silent before it is
// pinged.
func (f *Fallback) healthInterval() time.Duration {
	return max(2*f.cfg.RetryInterval, 100*time.Millisecond)
}

// deliver hands a message from another instance to onMessage.
func (f *Fallback) deliver(m any, onMessage func([]byte)) {
	msg, ok := m.(*redis.Message)
	if !ok || msg.Channel != f.channel {
		return // a subscription confirmation or a pong
	}
	from, payload, err := decodeMessage([]byte(msg.Payload))
	if err != nil || from == f.id {
		return
	}
	f.n.received.Add(1)
	onMessage(slices.Clip(payload))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

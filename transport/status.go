package transport

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/avion/authnode/shard"
)

// errorDomain and reasonSourceFailed mark a status whose sender answered
// that its source load failed, as opposed to a call that got no answer.
const (
	errorDomain        = "authnode"
	reasonSourceFailed = "SOURCE_FAILED"
)

// toStatus maps a shard error to a gRPC status. Messages name the kind of
// failure only: internal details (keys, source errors) never reach callers.
func toStatus(err error) error {
	switch {
	case errors.Is(err, shard.ErrBadRequest):
		return status.Error(codes.InvalidArgument, "bad request")
	case errors.Is(err, shard.ErrUnknownGroup):
		return status.Error(codes.NotFound, "unknown group")
	case errors.Is(err, shard.ErrSourceFailed):
		st, derr := status.New(codes.Unavailable, "source unavailable").
			WithDetails(&errdetails.ErrorInfo{Domain: errorDomain, Reason: reasonSourceFailed})
		if derr != nil {
			return status.Error(codes.Unavailable, "source unavailable")
		}
		return st.Err()
	case errors.Is(err, shard.ErrChurn):
		return status.Error(codes.Aborted, "key changed during every load attempt")
	case errors.Is(err, shard.ErrClosed):
		return status.Error(codes.Unavailable, "node shutting down")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	return status.Error(codes.Internal, "internal error")
}

// sourceFailed reports whether err is a status that says the peer answered
// and its source load failed.
func sourceFailed(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain && info.GetReason() == reasonSourceFailed {
			return true
		}
	}
	return false
}

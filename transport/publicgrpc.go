package transport

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/avion/authnode/transport/authpb"
)

// RegisterAuthService registers avion.auth.v1.AuthService over svc on s.
//
// An invalid token or API key is an OK answer with valid = false and an
// Error (code and message); a deny is allowed = false. Bad requests are
// InvalidArgument; a missing session is NotFound. Service errors: invalid
// input InvalidArgument, unavailable Unavailable, deadline
// DeadlineExceeded, canceled Canceled, anything else Internal with a fixed
// message. Mutations (RevokeTokens, PutSession, DeleteSession,
// InvalidateUser) need "authorization: Bearer <token>" metadata that
// mutations accepts (Unauthenticated or PermissionDenied otherwise, see
// Guard), checked before the request is looked at.
func RegisterAuthService(s grpc.ServiceRegistrar, svc Service, mutations Guard) {
	authpb.RegisterAuthServiceServer(s, &authServer{api: newPublicAPI(svc, mutations, time.Now)})
}

// authServer implements authpb.AuthServiceServer.
type authServer struct {
	authpb.UnimplementedAuthServiceServer
	api *publicAPI
}

// ValidateToken validates req.Token, or the call's bearer token when it is
// empty.
func (s *authServer) ValidateToken(ctx context.Context, req *authpb.ValidateTokenRequest) (*authpb.ValidateTokenResponse, error) {
	token := req.GetToken()
	if token == "" {
		token = grpcBearer(ctx)
	}
	if token == "" {
		return nil, grpcError(badInput("token is required, in the request or an authorization: Bearer metadata"))
	}
	claims, err := s.api.svc.ValidateToken(ctx, token)
	if rej, ok := tokenRejection(err); ok {
		return &authpb.ValidateTokenResponse{Error: pbError(rej)}, nil
	}
	if err != nil {
		return nil, grpcError(err)
	}
	meta, err := metadataJSON(claims.Metadata)
	if err != nil {
		return nil, grpcError(err)
	}
	return &authpb.ValidateTokenResponse{
		Valid:        true,
		UserId:       claims.UserID,
		Scopes:       claims.Scopes,
		ExpiresAt:    pbTime(claims.ExpiresAt),
		TokenType:    claims.TokenType,
		MetadataJson: string(meta),
	}, nil
}

// RevokeTokens is a mutation; an unset before means now.
func (s *authServer) RevokeTokens(ctx context.Context, req *authpb.RevokeTokensRequest) (*authpb.RevokeTokensResponse, error) {
	if err := s.api.guard.checkGRPC(ctx); err != nil {
		return nil, err
	}
	before, err := s.revokeBefore(req)
	if err != nil {
		return nil, grpcError(err)
	}
	rev, err := s.api.svc.RevokeTokens(ctx, req.GetUserId(), before)
	if err != nil {
		return nil, grpcError(err)
	}
	return &authpb.RevokeTokensResponse{
		Acknowledged: int32(rev.Acknowledged),
		Members:      int32(rev.Members),
		Watermark:    pbTime(rev.Watermark),
	}, nil
}

func (s *authServer) revokeBefore(req *authpb.RevokeTokensRequest) (time.Time, error) {
	if err := required(field{"user_id", req.GetUserId()}); err != nil {
		return time.Time{}, err
	}
	if req.GetBefore() == nil {
		return time.Time{}, nil
	}
	before, err := fromPBTime("before", req.GetBefore())
	if err != nil {
		return time.Time{}, err
	}
	return before, checkRevokeBefore(s.api.now(), before)
}

// Authorize answers a deny as allowed = false.
func (s *authServer) Authorize(ctx context.Context, req *authpb.AuthorizeRequest) (*authpb.AuthorizeResponse, error) {
	err := required(field{"user_id", req.GetUserId()}, field{"resource", req.GetResource()}, field{"action", req.GetAction()})
	if err != nil {
		return nil, grpcError(err)
	}
	allowed, err := s.api.svc.Authorize(ctx, req.GetUserId(), req.GetResource(), req.GetAction(), req.GetConditions())
	if err != nil {
		return nil, grpcError(err)
	}
	return &authpb.AuthorizeResponse{
		Allowed:  allowed,
		UserId:   req.GetUserId(),
		Resource: req.GetResource(),
		Action:   req.GetAction(),
	}, nil
}

// VerifyAPIKey answers a key that is not accepted as valid = false.
func (s *authServer) VerifyAPIKey(ctx context.Context, req *authpb.VerifyAPIKeyRequest) (*authpb.VerifyAPIKeyResponse, error) {
	if err := required(field{"api_key", req.GetApiKey()}); err != nil {
		return nil, grpcError(err)
	}
	info, err := s.api.svc.VerifyAPIKey(ctx, req.GetApiKey())
	if rej, ok := keyRejection(err); ok {
		return &authpb.VerifyAPIKeyResponse{Error: pbError(rej)}, nil
	}
	if err != nil {
		return nil, grpcError(err)
	}
	return &authpb.VerifyAPIKeyResponse{
		Valid:     true,
		UserId:    info.UserID,
		Name:      info.Name,
		Scopes:    info.Scopes,
		ExpiresAt: pbTime(info.ExpiresAt),
	}, nil
}

// GetSession answers NotFound when the user has no session.
func (s *authServer) GetSession(ctx context.Context, req *authpb.GetSessionRequest) (*authpb.GetSessionResponse, error) {
	if err := required(field{"user_id", req.GetUserId()}); err != nil {
		return nil, grpcError(err)
	}
	sess, err := s.api.svc.GetSession(ctx, req.GetUserId())
	if err != nil {
		return nil, grpcError(err)
	}
	if !sess.Found {
		return nil, status.Error(codes.NotFound, "no session for this user")
	}
	if err := checkStoredData(sess.Data); err != nil {
		return nil, grpcError(err)
	}
	return &authpb.GetSessionResponse{
		UserId:    req.GetUserId(),
		DataJson:  string(sess.Data),
		ExpiresAt: pbTime(sess.ExpiresAt),
	}, nil
}

// PutSession is a mutation.
func (s *authServer) PutSession(ctx context.Context, req *authpb.PutSessionRequest) (*authpb.PutSessionResponse, error) {
	if err := s.api.guard.checkGRPC(ctx); err != nil {
		return nil, err
	}
	data, expiresAt, err := s.checkPutSession(req)
	if err != nil {
		return nil, grpcError(err)
	}
	if err := s.api.svc.PutSession(ctx, req.GetUserId(), data, expiresAt); err != nil {
		return nil, grpcError(err)
	}
	return &authpb.PutSessionResponse{UserId: req.GetUserId(), ExpiresAt: pbTime(expiresAt)}, nil
}

// checkPutSession checks a PutSession request and returns the data to store
// and its expiry.
func (s *authServer) checkPutSession(req *authpb.PutSessionRequest) ([]byte, time.Time, error) {
	if err := required(field{"user_id", req.GetUserId()}); err != nil {
		return nil, time.Time{}, err
	}
	data, err := sessionData([]byte(req.GetDataJson()))
	if err != nil {
		return nil, time.Time{}, err
	}
	var at *time.Time
	var ttl *int64
	switch e := req.GetExpiry().(type) {
	case *authpb.PutSessionRequest_ExpiresAt:
		t, err := fromPBTime("expires_at", e.ExpiresAt)
		if err != nil {
			return nil, time.Time{}, err
		}
		at = &t
	case *authpb.PutSessionRequest_TtlSeconds:
		ttl = &e.TtlSeconds
	}
	expiresAt, err := sessionExpiry(s.api.now(), at, ttl)
	return data, expiresAt, err
}

// DeleteSession is a mutation; deleting no session is no error.
func (s *authServer) DeleteSession(ctx context.Context, req *authpb.DeleteSessionRequest) (*authpb.DeleteSessionResponse, error) {
	if err := s.api.guard.checkGRPC(ctx); err != nil {
		return nil, err
	}
	if err := required(field{"user_id", req.GetUserId()}); err != nil {
		return nil, grpcError(err)
	}
	if err := s.api.svc.DeleteSession(ctx, req.GetUserId()); err != nil {
		return nil, grpcError(err)
	}
	return &authpb.DeleteSessionResponse{}, nil
}

// InvalidateUser is a mutation.
func (s *authServer) InvalidateUser(ctx context.Context, req *authpb.InvalidateUserRequest) (*authpb.InvalidateUserResponse, error) {
	if err := s.api.guard.checkGRPC(ctx); err != nil {
		return nil, err
	}
	if err := required(field{"user_id", req.GetUserId()}); err != nil {
		return nil, grpcError(err)
	}
	acks, err := s.api.svc.InvalidateUser(ctx, req.GetUserId())
	if err != nil {
		return nil, grpcError(err)
	}
	return &authpb.InvalidateUserResponse{Acknowledged: int32(acks.Acknowledged), Members: int32(acks.Members)}, nil
}

// grpcError maps err to a status: a badInput with its message, a Service
// error as classify sorts it, with a fixed message.
func grpcError(err error) error {
	var bad badInput
	if errors.As(err, &bad) {
		return status.Error(codes.InvalidArgument, string(bad))
	}
	switch classify(err) {
	case errInvalid:
		return status.Error(codes.InvalidArgument, invalidMessage(err))
	case errUnavailable:
		return status.Error(codes.Unavailable, msgUnavailable)
	case errDeadline:
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errCanceled:
		return status.Error(codes.Canceled, "request canceled")
	}
	return status.Error(codes.Internal, "internal error")
}

func pbError(e apiError) *authpb.Error {
	return &authpb.Error{Code: e.Code, Message: e.Message}
}

// pbTime converts t; the zero time is unset.
func pbTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fromPBTime converts a timestamp of the field name, refusing an invalid
// one.
func fromPBTime(name string, ts *timestamppb.Timestamp) (time.Time, error) {
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, badInput(name + " is not a valid timestamp")
	}
	return ts.AsTime(), nil
}

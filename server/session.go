package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/syncengine"
)

type sessionService struct{ *Server }

func (s *sessionService) SignIn(ctx context.Context, req *pb.SignInRequest) (*pb.SignInResponse, error) {
	keys := []struct {
		l   *failureLimiter
		key string
	}{
		{s.signInByName, "sign-in name:" + req.GetName()},
		{s.signInByAddr, "sign-in address:" + peerHost(peerAddr(ctx))},
	}
	for _, k := range keys {
		wait, ok, err := k.l.allow(ctx, k.key)
		if err != nil {
			return nil, toConnect(s.log, err)
		}
		if !ok {
			return nil, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("too many failed sign-ins (limit: %s); try again in %s", k.l, wait.Round(time.Second)))
		}
	}
	p, token, expires, err := s.store.SignIn(ctx, req.GetName(), req.GetPassword())
	if errors.Is(err, syncengine.ErrUnauthenticated) {
		for _, k := range keys {
			if ferr := k.l.fail(ctx, k.key); ferr != nil {
				s.log.Error().Err(ferr).Msg("record a failed sign-in")
			}
		}
	}
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	addStat(ctx, "admin", p.ID)
	return &pb.SignInResponse{Token: token, ExpiresAt: timestamppb.New(expires), AdminId: p.ID, AdminName: p.Name,
		NodeId: p.Node, ReadOnly: p.ReadOnly}, nil
}

func (s *sessionService) SignOut(ctx context.Context, _ *pb.SignOutRequest) (*pb.SignOutResponse, error) {
	if err := s.store.SignOut(ctx, principal(ctx)); err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.SignOutResponse{}, nil
}

func (s *sessionService) GetSession(ctx context.Context, _ *pb.GetSessionRequest) (*pb.GetSessionResponse, error) {
	p := principal(ctx)
	home := authz.Home(p)
	var procs []string
	for proc, a := range actions {
		if slices.Contains(home, a) {
			procs = append(procs, proc)
		}
	}
	slices.Sort(procs)
	return &pb.GetSessionResponse{AdminId: p.ID, AdminName: p.Name, NodeId: p.Node, ReadOnly: p.ReadOnly, Procedures: procs}, nil
}

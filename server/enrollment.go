package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

type enrollmentService struct{ *Server }

func (s *enrollmentService) Enroll(ctx context.Context, req *pb.EnrollRequest) (*pb.EnrollResponse, error) {
	if req.GetCode() == "" || len(req.GetCode()) > 64 || len(req.GetDeviceName()) > 256 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("an enrolment needs a code (and a device name of at most 256 bytes)"))
	}
	peer := peerHost(peerAddr(ctx))
	wait, ok, err := s.enrollLimiter.allow(ctx, peer)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	if !ok {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("too many failed enrolments (limit: %s); try again in %s", s.enrollLimiter, wait.Round(time.Second)))
	}
	e, err := s.store.Enroll(ctx, req.GetCode(), req.GetDeviceName(), s.now())
	if errors.Is(err, syncengine.ErrUnauthenticated) {
		if ferr := s.enrollLimiter.fail(ctx, peer); ferr != nil {
			s.log.Error().Err(ferr).Msg("record a failed enrolment")
		}
	}
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	addStat(ctx, "device", e.DeviceID)
	return &pb.EnrollResponse{DeviceId: e.DeviceID, Token: e.Token, Scope: scopeToProto(e.Scope), ServerHlc: s.clock.Now().HLC}, nil
}

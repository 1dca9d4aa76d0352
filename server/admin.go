package server

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

type adminService struct{ *Server }

func (s *adminService) CreateOrgNode(ctx context.Context, req *pb.CreateOrgNodeRequest) (*pb.CreateOrgNodeResponse, error) {
	n, err := s.store.CreateOrgNode(ctx, principal(ctx), store.OrgNode{
		ParentID: req.GetParentId(), Level: store.OrgLevel(req.GetLevel()), Name: req.GetName(),
	})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.CreateOrgNodeResponse{Node: nodeToProto(n)}, nil
}

func (s *adminService) ListOrgNodes(ctx context.Context, _ *pb.ListOrgNodesRequest) (*pb.ListOrgNodesResponse, error) {
	nodes, err := s.store.ListOrgNodes(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ListOrgNodesResponse{}
	for _, n := range nodes {
		res.Nodes = append(res.Nodes, nodeToProto(n))
	}
	return res, nil
}

func validRole(r pb.WorkerRole) bool {
	_, ok := pb.WorkerRole_name[int32(r)]
	return ok && r != pb.WorkerRole_WORKER_ROLE_UNSPECIFIED
}

func (s *adminService) CreateWorker(ctx context.Context, req *pb.CreateWorkerRequest) (*pb.CreateWorkerResponse, error) {
	if !validRole(req.GetRole()) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unknown worker role %v", req.GetRole()))
	}
	w, err := s.store.CreateWorker(ctx, principal(ctx), store.Worker{Name: req.GetName(), Role: int32(req.GetRole()), GridIDs: req.GetGridIds()})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.CreateWorkerResponse{Worker: workerToProto(w)}, nil
}

func (s *adminService) ListWorkers(ctx context.Context, _ *pb.ListWorkersRequest) (*pb.ListWorkersResponse, error) {
	ws, err := s.store.ListWorkers(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ListWorkersResponse{}
	for _, w := range ws {
		res.Workers = append(res.Workers, workerToProto(w))
	}
	return res, nil
}

func (s *adminService) SetWorkerGrids(ctx context.Context, req *pb.SetWorkerGridsRequest) (*pb.SetWorkerGridsResponse, error) {
	if !syncengine.IsID(req.GetWorkerId()) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("worker id %q is not a UUID", req.GetWorkerId()))
	}
	w, err := s.store.SetWorkerGrids(ctx, principal(ctx), req.GetWorkerId(), req.GetGridIds())
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.SetWorkerGridsResponse{Worker: workerToProto(w)}, nil
}

func (s *adminService) CreateEnrollmentCode(ctx context.Context, req *pb.CreateEnrollmentCodeRequest) (*pb.CreateEnrollmentCodeResponse, error) {
	if !syncengine.IsID(req.GetWorkerId()) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("worker id %q is not a UUID", req.GetWorkerId()))
	}
	ttl := DefaultCodeTTL
	if t := req.GetTtlSeconds(); t > 0 {
		ttl = time.Duration(t) * time.Second
	}
	if ttl > MaxCodeTTL {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("an enrolment code lives at most %s, asked for %s", MaxCodeTTL, ttl))
	}
	expires := s.now().Add(ttl)
	code, err := s.store.CreateEnrollmentCode(ctx, principal(ctx), req.GetWorkerId(), expires)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.CreateEnrollmentCodeResponse{Code: code, ExpiresAtUnix: uint64(expires.Unix())}, nil
}

func (s *adminService) ErasePersonalData(ctx context.Context, req *pb.ErasePersonalDataRequest) (*pb.ErasePersonalDataResponse, error) {
	e, err := s.store.ErasePersonalData(ctx, principal(ctx), store.ErasureTarget{
		HouseholdID: req.GetHouseholdId(), PersonID: req.GetPersonId(), Reason: req.GetReason(), At: s.now(),
	}, func(observed syncengine.Clock) syncengine.Clock {
		s.clock.Observe(observed.HLC)
		return s.clock.Now()
	})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	addStat(ctx, "erased_visits", e.Visits)
	if !e.Scrubbed {
		s.log.Warn().Msg("erasure committed; readers held the write-ahead log, which keeps the old bytes until the next checkpoint")
	}
	return &pb.ErasePersonalDataResponse{Households: uint32(e.Households), Persons: uint32(e.Persons), Visits: uint32(e.Visits), Amendments: uint32(e.Amendments),
		Files: uint32(e.Files)}, nil
}

func (s *adminService) MoveHousehold(ctx context.Context, req *pb.MoveHouseholdRequest) (*pb.MoveHouseholdResponse, error) {
	if !syncengine.IsID(req.GetHouseholdId()) || !syncengine.IsID(req.GetGridId()) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("household and grid ids must be UUIDs"))
	}
	h, err := s.store.MoveHousehold(ctx, principal(ctx), req.GetHouseholdId(), req.GetGridId(), func(observed syncengine.Clock) syncengine.Clock {
		s.clock.Observe(observed.HLC)
		return s.clock.Now()
	})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.MoveHouseholdResponse{Household: wire.HouseholdToProto(&h)}, nil
}

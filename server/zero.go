package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/store"
)

func (s *adminService) PutZeroReport(ctx context.Context, req *pb.PutZeroReportRequest) (*pb.PutZeroReportResponse, error) {
	z, err := s.store.PutZeroReport(ctx, principal(ctx), store.ZeroReport{NodeID: req.GetNodeId(),
		From: req.GetFrom().AsTime(), Until: req.GetUntil().AsTime(), Note: req.GetNote()})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.PutZeroReportResponse{ZeroReport: zeroToProto(z)}, nil
}

func (s *reportService) ListReporting(ctx context.Context, req *pb.ListReportingRequest) (*pb.ListReportingResponse, error) {
	if err := checkIDs(map[string]string{"node_id": req.GetNodeId()}); err != nil {
		return nil, err
	}
	units, err := s.store.Reporting(ctx, principal(ctx), req.GetNodeId(), req.GetFrom().AsTime(), req.GetUntil().AsTime())
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	if err := s.audit(ctx, "reporting", req.GetNodeId(), ""); err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ListReportingResponse{}
	for _, u := range units {
		out := &pb.ReportingUnit{Node: nodeToProto(u.Node), Items: uint32(u.Items), Silent: u.Silent}
		for _, z := range u.ZeroReports {
			out.ZeroReports = append(out.ZeroReports, zeroToProto(z))
		}
		res.Units = append(res.Units, out)
	}
	return res, nil
}

func zeroToProto(z store.ZeroReport) *pb.ZeroReport {
	return &pb.ZeroReport{Id: z.ID, NodeId: z.NodeID, From: timestamppb.New(z.From), Until: timestamppb.New(z.Until), Note: z.Note,
		ReportedBy: z.AdminName, ReportedAt: timestamppb.New(z.ReportedAt)}
}

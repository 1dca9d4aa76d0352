package server

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// MaxRevokeReasonRunes bounds the reason a revoked device's user reads.
const MaxRevokeReasonRunes = 200

func (s *adminService) CreateAdmin(ctx context.Context, req *pb.CreateAdminRequest) (*pb.CreateAdminResponse, error) {
	var readOnly bool
	switch req.GetRole() {
	case pb.AdminRole_ADMIN_ROLE_ADMIN:
	case pb.AdminRole_ADMIN_ROLE_LEADER:
		readOnly = true
	default:
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unknown admin role %v", req.GetRole()))
	}
	if req.GetNodeId() != "" && !syncengine.IsID(req.GetNodeId()) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("node id %q is not a UUID", req.GetNodeId()))
	}
	a, token, err := s.store.AddAdmin(ctx, principal(ctx), req.GetName(), req.GetNodeId(), readOnly)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.CreateAdminResponse{AdminId: a.ID, Token: token}, nil
}

func (s *adminService) ListDevices(ctx context.Context, req *pb.ListDevicesRequest) (*pb.ListDevicesResponse, error) {
	if w := req.GetWorkerId(); w != "" && !syncengine.IsID(w) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("worker id %q is not a UUID", w))
	}
	ds, err := s.store.ListDevices(ctx, principal(ctx), req.GetWorkerId())
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ListDevicesResponse{}
	silentSince := s.now().AddDate(0, 0, -int(req.GetSilentDays()))
	for _, d := range ds {
		if req.GetSilentDays() > 0 && !d.Silent(silentSince) {
			continue
		}
		res.Devices = append(res.Devices, deviceToProto(d))
	}
	return res, nil
}

func (s *adminService) RevokeDevice(ctx context.Context, req *pb.RevokeDeviceRequest) (*pb.RevokeDeviceResponse, error) {
	if !syncengine.IsID(req.GetDeviceId()) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("device id %q is not a UUID", req.GetDeviceId()))
	}
	reason := strings.TrimSpace(req.GetReason())
	if reason == "" {
		reason = "revoked by an admin"
	}
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxRevokeReasonRunes {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("reason: at most %d characters of UTF-8", MaxRevokeReasonRunes))
	}
	d, err := s.store.RevokeDevice(ctx, principal(ctx), req.GetDeviceId(), reason, s.now())
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.RevokeDeviceResponse{Device: deviceToProto(d)}, nil
}

func deviceToProto(d store.Device) *pb.Device {
	out := &pb.Device{Id: d.ID, WorkerId: d.WorkerID, Name: d.Name, EnrolledAt: timestamppb.New(d.EnrolledAt), RevokedReason: d.RevokedReason}
	if !d.RevokedAt.IsZero() {
		out.RevokedAt = timestamppb.New(d.RevokedAt)
	}
	if !d.LastSeen.IsZero() {
		out.LastSeenAt = timestamppb.New(d.LastSeen)
	}
	if !d.Sync.At.IsZero() {
		out.LastSyncAt = timestamppb.New(d.Sync.At)
		out.AppVersion, out.Outbox = d.Sync.AppVersion, uint32(d.Sync.Outbox)
	}
	if !d.Sync.OldestUnsynced.IsZero() {
		out.OldestUnsyncedVisitAt = timestamppb.New(d.Sync.OldestUnsynced)
	}
	return out
}

// revokedError is the Unauthenticated error of a revoked device, with the
// detail the SDK wipes its replica on.
func revokedError(e *store.RevokedError) error {
	ce := connect.NewError(connect.CodeUnauthenticated, e)
	if d, err := connect.NewErrorDetail(&pb.DeviceRevoked{DeviceId: e.DeviceID, RevokedAt: timestamppb.New(e.At), Reason: e.Reason}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

func (s *adminService) SetDevicePolicy(ctx context.Context, req *pb.SetDevicePolicyRequest) (*pb.SetDevicePolicyResponse, error) {
	p, err := s.store.SetDevicePolicy(ctx, principal(ctx), store.DevicePolicy{
		LockAfterDays: req.GetPolicy().GetLockAfterDays(), WipeAfterDays: req.GetPolicy().GetWipeAfterDays()})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.SetDevicePolicyResponse{Policy: policyToProto(p)}, nil
}

func (s *adminService) GetDevicePolicy(ctx context.Context, _ *pb.GetDevicePolicyRequest) (*pb.GetDevicePolicyResponse, error) {
	p, err := s.store.DevicePolicy(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.GetDevicePolicyResponse{Policy: policyToProto(p)}, nil
}

func policyToProto(p store.DevicePolicy) *pb.DevicePolicy {
	return &pb.DevicePolicy{LockAfterDays: p.LockAfterDays, WipeAfterDays: p.WipeAfterDays}
}

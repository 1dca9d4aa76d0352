package server

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

type attachmentService struct{ *Server }

func (s *attachmentService) UploadAttachment(ctx context.Context, req *pb.UploadAttachmentRequest) (*pb.UploadAttachmentResponse, error) {
	a := req.GetAttachment()
	received, complete, err := s.store.UploadAttachment(ctx, principal(ctx), a.GetVisitId(), attachmentFromProto(a),
		int64(min(req.GetOffset(), syncengine.MaxAttachmentBytes+1)), req.GetData())
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	addStat(ctx, "bytes", len(req.GetData()))
	return &pb.UploadAttachmentResponse{Received: uint64(received), Complete: complete}, nil
}

func (s *attachmentService) ListAttachments(ctx context.Context, req *pb.ListAttachmentsRequest) (*pb.ListAttachmentsResponse, error) {
	p := principal(ctx)
	as, err := s.store.ListAttachments(ctx, p, req.GetVisitIds())
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	if p.Kind == store.KindAdmin {
		ids := req.GetVisitIds()
		what := "list the files of visit " + ids[0]
		if len(ids) > 1 {
			what = fmt.Sprintf("list the files of %d visits: %s and others", len(ids), ids[0])
		}
		if err := s.auditAttachments(ctx, what); err != nil {
			return nil, err
		}
	}
	res := &pb.ListAttachmentsResponse{}
	for _, a := range as {
		res.Attachments = append(res.Attachments, attachmentToProto(a))
	}
	return res, nil
}

func (s *attachmentService) DownloadAttachment(ctx context.Context, req *pb.DownloadAttachmentRequest, stream *connect.ServerStream[pb.DownloadAttachmentResponse]) error {
	p := principal(ctx)
	first, sent := true, 0
	err := s.store.DownloadAttachment(ctx, p, req.GetSha256(), int64(min(req.GetOffset(), syncengine.MaxAttachmentBytes+1)),
		func(size, at int64, data []byte) error {
			m := &pb.DownloadAttachmentResponse{Offset: uint64(at), Data: data}
			if first {
				// Audited once the caller may read it, before a byte goes.
				if p.Kind == store.KindAdmin {
					if err := s.auditAttachments(ctx, "download attachment "+req.GetSha256()); err != nil {
						return err
					}
				}
				m.Size, first = uint64(size), false
			}
			sent += len(data)
			return stream.Send(m)
		})
	addStat(ctx, "bytes", sent)
	return toConnect(s.log, err)
}

// auditAttachments records an admin's read of files, once the caller may
// read them and before any is sent: photos of a household are its data as
// much as its ledger is.
func (s *attachmentService) auditAttachments(ctx context.Context, action string) error {
	err := s.store.Audit(ctx, principal(ctx), store.AuditEntry{At: s.now(), Action: action})
	return toConnect(s.log, err)
}

func attachmentFromProto(a *pb.Attachment) syncengine.Attachment {
	return syncengine.Attachment{SHA256: a.GetSha256(), Size: int64(min(a.GetSize(), syncengine.MaxAttachmentBytes+1)),
		Name: a.GetName(), MediaType: a.GetMediaType()}
}

func attachmentToProto(a store.VisitAttachment) *pb.Attachment {
	return &pb.Attachment{VisitId: a.VisitID, Sha256: a.SHA256, Size: uint64(a.Size), Name: a.Name, MediaType: a.MediaType, Complete: a.Complete}
}

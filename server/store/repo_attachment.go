package store

import (
	"context"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Files holds visits' files: their content, in the pieces it
// arrived in, and which visits each belongs to. A file is kept once
// whatever the number of visits it belongs to.
type Files interface {
	// AttachmentState is how many bytes of file sha the store holds and
	// whether the file is whole and checked (0, false for none). In a
	// write transaction the file's record is locked until it ends.
	AttachmentState(ctx context.Context, sha string) (received int64, complete bool, err error)
	// AppendAttachment stores data at offset, which is the file's received
	// count as the caller read it, creating its record at offset 0. If a
	// concurrent upload of the same file moved the count since, the
	// transaction fails as a conflict the backend runs again.
	AppendAttachment(ctx context.Context, sha string, size, offset int64, data []byte) error
	// CompleteAttachment marks a file whole and checked.
	CompleteAttachment(ctx context.Context, sha string) error
	// DropAttachment deletes a file's content and record, leaving its links.
	DropAttachment(ctx context.Context, sha string) error
	// ReadAttachment calls fn, in order, with the pieces of file sha that
	// end after offset; the first may start before it.
	ReadAttachment(ctx context.Context, sha string, offset int64, fn func(at int64, data []byte) error) error
	// LinkAttachment records that a file belongs to a visit (nothing if
	// it does already).
	LinkAttachment(ctx context.Context, a VisitAttachment) error
	// VisitAttachments lists the files of visits, whole or not, by visit
	// and name.
	VisitAttachments(ctx context.Context, visitIDs []string) ([]VisitAttachment, error)
	// AttachmentVisits lists the visits file sha belongs to.
	AttachmentVisits(ctx context.Context, sha string) ([]string, error)
	// UnlinkAttachments deletes the links of visits to their files and
	// returns the files that belong to no visit since.
	UnlinkAttachments(ctx context.Context, visitIDs []string) (orphans []string, err error)
}

// VisitAttachment is a file of a visit.
type VisitAttachment struct {
	VisitID string
	syncengine.Attachment
	// Complete: the store holds the whole file, checked.
	Complete bool
	// LinkedAt is when the visit's first upload of it began.
	LinkedAt time.Time
}

package store

import (
	"context"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Files holds visits' files: their content, in the pieces it arrived in,
// and which visits each belongs to. A file is kept per worker who uploaded
// it (its owner), once whatever the number of that worker's visits it
// belongs to: an upload in progress, or a whole file, is never shared with
// another worker, who must send the bytes to have them (a hash alone
// proves nothing).
type Files interface {
	// AttachmentState is what the store holds of owner's copy of file sha
	// (zero for none). In a write transaction the copy's record is locked
	// until it ends.
	AttachmentState(ctx context.Context, key FileKey) (FileState, error)
	// AppendAttachment stores data at offset, which is the copy's received
	// count as the caller read it, creating its record at offset 0. If a
	// concurrent upload of the same copy moved the count since, the
	// transaction fails as a conflict the backend runs again.
	AppendAttachment(ctx context.Context, key FileKey, size, offset int64, data []byte) error
	// CompleteAttachment marks a copy whole and checked.
	CompleteAttachment(ctx context.Context, key FileKey) error
	// DropAttachment deletes a copy's content and record, leaving links.
	DropAttachment(ctx context.Context, key FileKey) error
	// ReadAttachment calls fn, in order, with the pieces of a copy that
	// end after offset; the first may start before it.
	ReadAttachment(ctx context.Context, key FileKey, offset int64, fn func(at int64, data []byte) error) error
	// LinkAttachment records that a file belongs to a visit (nothing if
	// it does already).
	LinkAttachment(ctx context.Context, a VisitAttachment) error
	// VisitAttachments lists the files of visits, by visit and name, each
	// with whether its owner's copy is whole.
	VisitAttachments(ctx context.Context, visitIDs []string) ([]VisitAttachment, error)
	// AttachmentLinks lists the links to file sha, by visit.
	AttachmentLinks(ctx context.Context, sha string) ([]VisitAttachment, error)
	// UnlinkAttachments deletes the links of visits to their files and
	// returns the copies no visit links since.
	UnlinkAttachments(ctx context.Context, visitIDs []string) (orphans []FileKey, err error)
}

// FileKey names one worker's copy of a file.
type FileKey struct {
	SHA256 string
	// Owner is the worker who uploaded it.
	Owner string
}

// FileState is what the store holds of a copy: its size as its first
// part said, the bytes received, and whether it is whole and checked.
type FileState struct {
	Size, Received int64
	Complete       bool
}

// VisitAttachment is a file of a visit.
type VisitAttachment struct {
	VisitID string
	// Owner is the worker whose copy the link names: the visit's.
	Owner string
	syncengine.Attachment
	// Complete: the store holds the owner's copy whole, checked.
	Complete bool
	// LinkedAt is when the file became the visit's.
	LinkedAt time.Time
}

package sdk

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// Files that go with visits (photos of a meeting, scans of signed pledge
// forms). A worker attaches them offline; their bytes go into the folder
// beside the replica under their SHA-256, and each Sync uploads them after
// the rows, on a lane of their own: a cut upload goes on from what the
// server holds, and a failed one never fails the rows' sync. Files of other
// workers' visits stay on the server until the worker asks for them
// (FetchAttachments).

// AttachmentInput is a file to go with a visit.
type AttachmentInput struct {
	// Name is the file's name as the app shows it; MediaType its MIME type
	// ("image/jpeg").
	Name, MediaType string
	Content         io.Reader
}

// Attachment is a file of a visit as this replica knows it.
type Attachment struct {
	VisitID string
	syncengine.Attachment
	// Own: attached on this phone, to be uploaded. Uploaded: the server
	// holds it whole.
	Own, Uploaded bool
	// Refused says why the server refused it for good ("" if it did not).
	Refused string
	// Path is the file on this phone.
	Path string
}

// filesDir is the folder of the replica's files, beside its database.
func (r *Replica) filesDir() string { return r.db.Path + ".files" }

func (r *Replica) filePath(sha string) string { return filepath.Join(r.filesDir(), sha) }

// AttachFile keeps a file with one of the worker's own visits, offline: it
// is uploaded by the syncs after the visit's. A file over
// syncengine.MaxAttachmentBytes, or one more than
// syncengine.MaxAttachmentsPerVisit, is refused (syncengine.ErrLimit).
// Attaching the same bytes to the same visit again changes nothing.
func (r *Replica) AttachFile(ctx context.Context, visitID string, in AttachmentInput) (Attachment, error) {
	if in.Content == nil {
		return Attachment{}, fmt.Errorf("attach a file: %w: no content", syncengine.ErrInvalid)
	}
	// Everything but the bytes is checked before they are copied.
	probe := syncengine.Attachment{SHA256: strings.Repeat("0", 64), Size: 1, Name: in.Name, MediaType: in.MediaType}
	if err := syncengine.ValidateAttachment(probe); err != nil {
		return Attachment{}, fmt.Errorf("attach a file: %w", err)
	}
	if err := r.mayAttach(ctx, r.db.R, visitID); err != nil {
		return Attachment{}, fmt.Errorf("attach a file: %w", err)
	}
	sha, size, err := r.keepFile(in.Content)
	if err != nil {
		return Attachment{}, fmt.Errorf("attach a file: %w", err)
	}
	a := Attachment{VisitID: visitID, Own: true, Path: r.filePath(sha),
		Attachment: syncengine.Attachment{SHA256: sha, Size: size, Name: in.Name, MediaType: in.MediaType}}
	err = r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if err := r.mayAttach(ctx, tx, visitID); err != nil {
			return err
		}
		var n int
		var have bool
		err = tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(sha256 = ?), 0) FROM attachments WHERE visit_id = ?`, sha, visitID).Scan(&n, &have)
		switch {
		case err != nil:
			return err
		case have:
			return nil
		case n >= syncengine.MaxAttachmentsPerVisit:
			return fmt.Errorf("%w: a visit has at most %d files", syncengine.ErrLimit, syncengine.MaxAttachmentsPerVisit)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO attachments (visit_id, sha256, size, name, media_type, own, added_at) VALUES (?, ?, ?, ?, ?, 1, ?)`,
			visitID, sha, size, in.Name, in.MediaType, r.now().UnixMilli())
		return err
	})
	if err != nil {
		// The bytes stay only if a row holds them (the same file kept
		// with another visit).
		var kept bool
		if qerr := r.db.R.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = ?)`, sha).Scan(&kept); qerr == nil && !kept {
			r.removeFilesOf([]string{sha})
		}
		return Attachment{}, fmt.Errorf("attach a file: %w", err)
	}
	return a, nil
}

// mayAttach checks that visit is one of the worker's own, in the replica.
func (r *Replica) mayAttach(ctx context.Context, q statedb.Querier, visitID string) error {
	st, err := r.enrolledState(ctx, q)
	if err != nil {
		return err
	}
	vs, err := statedb.Visits(ctx, q, []string{visitID})
	switch {
	case err != nil:
		return err
	case len(vs) == 0:
		return fmt.Errorf("%w: visit %s is not in this replica", syncengine.ErrNotFound, visitID)
	case vs[0].VisitorID != st.WorkerID:
		return fmt.Errorf("%w: only the worker who recorded visit %s adds files to it", syncengine.ErrOutOfScope, visitID)
	}
	return nil
}

// keepFile copies content into the replica's folder under its SHA-256,
// reading at most one byte past the limit.
func (r *Replica) keepFile(content io.Reader) (sha string, size int64, err error) {
	if err := os.MkdirAll(r.filesDir(), 0o700); err != nil {
		return "", 0, err
	}
	tmp, err := os.CreateTemp(r.filesDir(), "incoming-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(tmp, h), io.LimitReader(content, syncengine.MaxAttachmentBytes+1))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return "", 0, err
	case size > syncengine.MaxAttachmentBytes:
		return "", 0, fmt.Errorf("%w: a file is at most %d bytes", syncengine.ErrLimit, syncengine.MaxAttachmentBytes)
	case size == 0:
		return "", 0, fmt.Errorf("%w: the file is empty", syncengine.ErrInvalid)
	}
	sha = hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), r.filePath(sha)); err != nil {
		return "", 0, err
	}
	return sha, size, nil
}

// Attachments lists the files of a visit this replica knows: its own, and
// those fetched. Like every read, it is refused while the replica is
// locked.
func (r *Replica) Attachments(ctx context.Context, visitID string) ([]Attachment, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	rows, err := r.db.R.QueryContext(ctx, `SELECT visit_id, sha256, size, name, media_type, own, uploaded, refused
		FROM attachments WHERE visit_id = ? ORDER BY name, sha256`, visitID)
	if err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.VisitID, &a.SHA256, &a.Size, &a.Name, &a.MediaType, &a.Own, &a.Uploaded, &a.Refused); err != nil {
			return nil, fmt.Errorf("attachments: %w", err)
		}
		a.Path = r.filePath(a.SHA256)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (r *Replica) attachmentClient(s state) doorbookv1connect.AttachmentServiceClient {
	// A download's messages hold a piece each: a server sending more is
	// refused before its message is read whole.
	return doorbookv1connect.NewAttachmentServiceClient(r.http, s.ServerURL,
		connect.WithInterceptors(bearer.Token(s.Token)), r.coders.ClientOptions(r.noCompression),
		connect.WithReadMaxBytes(syncengine.AttachmentChunk+64<<10))
}

// FetchAttachments downloads the files of a visit that the replica does
// not hold (another worker's visit, or its own after a reset), when the
// worker asks for them, and lists the visit's files.
func (r *Replica) FetchAttachments(ctx context.Context, visitID string) ([]Attachment, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	st, err := r.enrolledState(ctx, r.db.R)
	if err != nil {
		return nil, err
	}
	c := r.attachmentClient(st)
	res, err := c.ListAttachments(ctx, &pb.ListAttachmentsRequest{VisitIds: []string{visitID}})
	if err != nil {
		return nil, callError("list attachments", err)
	}
	for _, a := range res.GetAttachments() {
		// The server's word names files in the replica's folder: it is
		// checked as any input is.
		desc := syncengine.Attachment{SHA256: a.GetSha256(), Size: int64(min(a.GetSize(), syncengine.MaxAttachmentBytes+1)),
			Name: a.GetName(), MediaType: a.GetMediaType()}
		if err := syncengine.ValidateAttachment(desc); err != nil || a.GetVisitId() != visitID {
			return nil, fmt.Errorf("fetch attachments: the server listed a file that is not visit %s's or not valid (%v)", visitID, err)
		}
		if _, err := os.Stat(r.filePath(a.GetSha256())); err != nil {
			if err := r.download(ctx, c, a.GetSha256()); err != nil {
				return nil, err
			}
		}
		err := r.exec(ctx, `INSERT INTO attachments (visit_id, sha256, size, name, media_type, own, uploaded, added_at)
			VALUES (?, ?, ?, ?, ?, 0, 1, ?) ON CONFLICT (visit_id, sha256) DO UPDATE SET uploaded = 1`,
			a.GetVisitId(), a.GetSha256(), int64(a.GetSize()), a.GetName(), a.GetMediaType(), r.now().UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("fetch attachments: %w", err)
		}
	}
	return r.Attachments(ctx, visitID)
}

// download fetches one file, checked against its name, into the folder.
func (r *Replica) download(ctx context.Context, c doorbookv1connect.AttachmentServiceClient, sha string) error {
	if err := os.MkdirAll(r.filesDir(), 0o700); err != nil {
		return fmt.Errorf("download attachment: %w", err)
	}
	tmp, err := os.CreateTemp(r.filesDir(), "incoming-*")
	if err != nil {
		return fmt.Errorf("download attachment: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	stream, err := c.DownloadAttachment(ctx, &pb.DownloadAttachmentRequest{Sha256: sha})
	if err != nil {
		return callError("download attachment", err)
	}
	defer stream.Close()
	h := sha256.New()
	var got int64
	for stream.Receive() {
		m := stream.Msg()
		if m.GetOffset() != uint64(got) || got+int64(len(m.GetData())) > syncengine.MaxAttachmentBytes {
			return fmt.Errorf("download attachment %s: bytes out of order or past the limit", sha)
		}
		if _, err := io.MultiWriter(tmp, h).Write(m.GetData()); err != nil {
			return fmt.Errorf("download attachment: %w", err)
		}
		got += int64(len(m.GetData()))
	}
	if err := stream.Err(); err != nil {
		return callError("download attachment", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != sha {
		return fmt.Errorf("download attachment %s: the bytes do not match their SHA-256", sha)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("download attachment: %w", err)
	}
	if err := os.Rename(tmp.Name(), r.filePath(sha)); err != nil {
		return fmt.Errorf("download attachment: %w", err)
	}
	return nil
}

// AttachmentReport says what one sync's upload lane did.
type AttachmentReport struct {
	// Uploaded counts files the server now holds whole; Bytes the bytes
	// sent; Pending the files still to go; Refused the files the server
	// refused for good in this sync (see Attachment.Refused).
	Uploaded, Pending, Refused int
	Bytes                      int64
	// Err is why the lane stopped short (offline, a cut link); the next
	// sync goes on from what the server holds.
	Err error
}

// uploadAttachments is the upload lane: after the rows, file by file, each
// from what the server holds.
func (r *Replica) uploadAttachments(ctx context.Context, rep *AttachmentReport) {
	st, err := r.enrolledState(ctx, r.db.R)
	if err != nil {
		rep.Err = err
		return
	}
	pending, err := r.pendingAttachments(ctx)
	if err != nil {
		rep.Err = err
		return
	}
	c := r.attachmentClient(st)
	for _, a := range pending {
		err := r.upload(ctx, c, a, rep)
		var refused *refusal
		switch {
		case errors.As(err, &refused):
			rep.Refused++
			if werr := r.exec(ctx, `UPDATE attachments SET refused = ? WHERE visit_id = ? AND sha256 = ?`,
				refused.Error(), a.VisitID, a.SHA256); werr != nil {
				rep.Err = werr
			}
		case errors.Is(err, errVisitNotThere):
			// Its visit was not pushed (set aside, or waiting): the file
			// waits with it.
		case err != nil:
			rep.Err = err
			// The rest wait for the next sync; the count says how many.
			rep.Pending, _ = r.countPending(ctx)
			return
		}
	}
	rep.Pending, err = r.countPending(ctx)
	if err != nil {
		rep.Err = err
	}
}

// refusal is the server's final word on a file.
type refusal struct{ err error }

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

var errVisitNotThere = errors.New("the visit is not on the server yet")

func (r *Replica) upload(ctx context.Context, c doorbookv1connect.AttachmentServiceClient, a Attachment, rep *AttachmentReport) error {
	f, err := os.Open(a.Path)
	if err != nil {
		return &refusal{fmt.Errorf("the file is gone from the phone: %w", err)}
	}
	defer f.Close()
	desc := &pb.Attachment{VisitId: a.VisitID, Sha256: a.SHA256, Size: uint64(a.Size), Name: a.Name, MediaType: a.MediaType}
	call := func(offset int64, data []byte) (*pb.UploadAttachmentResponse, error) {
		res, err := c.UploadAttachment(ctx, &pb.UploadAttachmentRequest{Attachment: desc, Offset: uint64(offset), Data: data})
		if err != nil {
			err = callError("upload attachment", err)
			switch connect.CodeOf(err) {
			case connect.CodeNotFound:
				return nil, errVisitNotThere
			case connect.CodeInvalidArgument, connect.CodePermissionDenied:
				return nil, &refusal{err}
				// ResourceExhausted is the server busy or full as often as a
				// limit this phone keeps too: tried again at the next sync.
			}
			return nil, err
		}
		return res, nil
	}
	// Ask first: after a cut, the server may hold more than this phone
	// knows it sent.
	res, err := call(0, nil)
	buf := make([]byte, syncengine.AttachmentChunk)
	for err == nil && !res.GetComplete() {
		if res.GetReceived() >= uint64(a.Size) {
			// Whole but not complete, or more than the file: not an answer
			// this protocol gives. Tried again at the next sync.
			return fmt.Errorf("upload attachment %s: the server says it holds %d bytes of a file of %d", a.SHA256, res.GetReceived(), a.Size)
		}
		at := int64(res.GetReceived())
		n, rerr := f.ReadAt(buf[:min(int64(len(buf)), a.Size-at)], at)
		if rerr != nil && !errors.Is(rerr, io.EOF) || n == 0 {
			return &refusal{fmt.Errorf("the file on the phone is shorter than its %d bytes", a.Size)}
		}
		res, err = call(at, buf[:n])
		if err == nil {
			rep.Bytes += int64(n)
			if int64(res.GetReceived()) <= at && !res.GetComplete() {
				return fmt.Errorf("upload attachment %s: the server kept nothing at %d", a.SHA256, at)
			}
		}
	}
	if err != nil {
		return err
	}
	rep.Uploaded++
	return r.exec(ctx, `UPDATE attachments SET uploaded = 1 WHERE visit_id = ? AND sha256 = ?`, a.VisitID, a.SHA256)
}

// exec runs one statement in a write transaction of its own.
func (r *Replica) exec(ctx context.Context, query string, args ...any) error {
	return r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
}

func (r *Replica) pendingAttachments(ctx context.Context) ([]Attachment, error) {
	rows, err := r.db.R.QueryContext(ctx, `SELECT visit_id, sha256, size, name, media_type FROM attachments
		WHERE own = 1 AND uploaded = 0 AND refused = '' ORDER BY added_at, visit_id, sha256`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		a := Attachment{Own: true}
		if err := rows.Scan(&a.VisitID, &a.SHA256, &a.Size, &a.Name, &a.MediaType); err != nil {
			return nil, err
		}
		a.Path = r.filePath(a.SHA256)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (r *Replica) countPending(ctx context.Context) (int, error) {
	var n int
	err := r.db.R.QueryRowContext(ctx, `SELECT count(*) FROM attachments WHERE own = 1 AND uploaded = 0 AND refused = ''`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// forgetAttachments deletes the rows of visits' files and returns the
// files no visit has since, for removeFilesOf once the transaction is in.
func forgetAttachments(ctx context.Context, tx *sqlitex.Tx, visitIDs []string) ([]string, error) {
	var gone []string
	for _, v := range visitIDs {
		shas, err := deleteFiles(ctx, tx, `DELETE FROM attachments WHERE visit_id = ? RETURNING sha256`, v)
		if err != nil {
			return nil, err
		}
		gone = append(gone, shas...)
	}
	return unheld(ctx, tx, gone)
}

// pruneAttachments deletes the rows of files whose visits left the
// replica (evicted with their households), but for the phone's own still
// to be uploaded, and returns the files no row holds since.
func pruneAttachments(ctx context.Context, tx *sqlitex.Tx) ([]string, error) {
	gone, err := deleteFiles(ctx, tx, `DELETE FROM attachments WHERE visit_id NOT IN (SELECT id FROM visits)
		AND NOT (own = 1 AND uploaded = 0 AND refused = '') RETURNING sha256`)
	if err != nil {
		return nil, err
	}
	return unheld(ctx, tx, gone)
}

// deleteFiles runs a DELETE of attachments rows that returns their hashes.
func deleteFiles(ctx context.Context, tx *sqlitex.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var sha string
		if err := rows.Scan(&sha); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, sha)
	}
	return out, errors.Join(rows.Close(), rows.Err())
}

// unheld keeps of shas those no row of the attachments table holds.
func unheld(ctx context.Context, tx *sqlitex.Tx, shas []string) ([]string, error) {
	var out []string
	for _, sha := range shas {
		var kept bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = ?)`, sha).Scan(&kept); err != nil {
			return nil, err
		}
		if !kept {
			out = append(out, sha)
		}
	}
	return out, nil
}

// removeFilesOf deletes files from the folder; one that will not go is
// left for the next wipe (it is named by its hash, and no row points to
// it).
func (r *Replica) removeFilesOf(shas []string) {
	for _, sha := range shas {
		if syncengine.ValidateSHA256(sha) != nil {
			continue // not a name this folder holds
		}
		if err := os.Remove(r.filePath(sha)); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn().Err(err).Str("file", sha).Msg("could not remove an erased visit's file")
		}
	}
}

// removeFiles deletes the replica's folder of files (a wipe).
func (r *Replica) removeFiles() error { return os.RemoveAll(r.filesDir()) }

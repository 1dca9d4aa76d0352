package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// The rules of visits' files: only the worker who recorded a visit
// uploads its files, once the visit is on the server and unless its
// household's data was erased since, at most syncengine.MaxAttachmentsPerVisit
// of them; each worker's copy of a file is kept apart, in the order its
// bytes arrive, and is whole only when they match its SHA-256 (a worker
// cannot borrow another's copy by naming its hash); a worker's device reads
// the files of visits to households of its grids, an admin those of its
// subtree.

// UploadAttachment keeps the part of a visit's file that starts at offset
// (none: a question) and says how much of the file the server holds and
// whether it is whole. A part at another offset than the server's count is
// not kept: the answer says where the phone goes on. The file becomes the
// visit's once whole.
func (s *Service) UploadAttachment(ctx context.Context, p store.Principal, visitID string, a syncengine.Attachment, offset int64, data []byte) (received int64, complete bool, err error) {
	if err := authz.Decide(p, authz.Sync, authz.Anywhere); err != nil {
		return 0, false, err
	}
	if err := syncengine.ValidateAttachment(a); err != nil {
		return 0, false, err
	}
	if len(data) > syncengine.AttachmentChunk {
		return 0, false, fmt.Errorf("%w: %d bytes in one upload call, more than %d", syncengine.ErrLimit, len(data), syncengine.AttachmentChunk)
	}
	if offset < 0 || offset > a.Size || int64(len(data)) > a.Size-offset {
		return 0, false, fmt.Errorf("%w: %d bytes at %d do not fit a file of %d", syncengine.ErrInvalid, len(data), offset, a.Size)
	}
	key := store.FileKey{SHA256: a.SHA256, Owner: p.ID}
	var mismatch bool
	err = s.db.Update(ctx, func(tx store.Tx) error {
		mismatch, received, complete = false, 0, false
		vs, err := tx.Visits(ctx, []string{visitID})
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return fmt.Errorf("%w: visit %s is not on the server: push it before its files", syncengine.ErrNotFound, visitID)
		}
		if vs[0].VisitorID != p.ID {
			return fmt.Errorf("%w: only the worker who recorded visit %s adds files to it", syncengine.ErrOutOfScope, visitID)
		}
		// A visit made before its household's data was erased has lost its
		// files for good: a phone still holding one must not bring it back.
		// Reading the households locks them, as an erasure does first: an
		// erasure under way ends before this reads it, and one that starts
		// now waits for this upload, then unlinks what it linked.
		if _, err := tx.Households(ctx, vs[0].HouseholdIDs); err != nil {
			return err
		}
		erased, err := tx.HouseholdErasure(ctx, vs[0].HouseholdIDs)
		if err != nil {
			return err
		}
		if erased != 0 && vs[0].Clock.HLC <= erased {
			return fmt.Errorf("%w: the household's personal data was erased after visit %s: its files are not taken", syncengine.ErrInvalid, visitID)
		}
		links, err := tx.VisitAttachments(ctx, []string{visitID})
		if err != nil {
			return err
		}
		linked := slices.ContainsFunc(links, func(l store.VisitAttachment) bool { return l.SHA256 == a.SHA256 })
		if !linked && len(links) >= syncengine.MaxAttachmentsPerVisit {
			return fmt.Errorf("%w: a visit has at most %d files", syncengine.ErrLimit, syncengine.MaxAttachmentsPerVisit)
		}
		st, err := tx.AttachmentState(ctx, key)
		if err != nil {
			return err
		}
		if st.Size != 0 && st.Size != a.Size {
			return fmt.Errorf("%w: attachment %s was begun as %d bytes, not %d", syncengine.ErrInvalid, a.SHA256, st.Size, a.Size)
		}
		link := func() error {
			if linked {
				return nil
			}
			return tx.LinkAttachment(ctx, store.VisitAttachment{VisitID: visitID, Owner: p.ID, Attachment: a, LinkedAt: s.now()})
		}
		received, complete = st.Received, st.Complete
		if complete {
			return link()
		}
		if len(data) == 0 || offset != received {
			return nil
		}
		if err := tx.AppendAttachment(ctx, key, a.Size, offset, data); err != nil {
			return err
		}
		received = offset + int64(len(data))
		if received < a.Size {
			return nil
		}
		ok, err := hashMatches(ctx, tx, key)
		switch {
		case err != nil:
			return err
		case !ok:
			// Dropped for good, in this transaction: the phone's copy is
			// not what it named, and sending it again would not help.
			mismatch, received = true, 0
			return tx.DropAttachment(ctx, key)
		}
		complete = true
		if err := tx.CompleteAttachment(ctx, key); err != nil {
			return err
		}
		return link()
	})
	if err != nil {
		return 0, false, fmt.Errorf("upload attachment %s of visit %s: %w", a.SHA256, visitID, err)
	}
	if mismatch {
		return 0, false, fmt.Errorf("%w: the content of attachment %s of visit %s does not match its SHA-256", syncengine.ErrInvalid, a.SHA256, visitID)
	}
	return received, complete, nil
}

func hashMatches(ctx context.Context, tx store.Tx, key store.FileKey) (bool, error) {
	h := sha256.New()
	err := tx.ReadAttachment(ctx, key, 0, func(_ int64, data []byte) error {
		h.Write(data)
		return nil
	})
	if err != nil {
		return false, err
	}
	want, _ := hex.DecodeString(key.SHA256)
	return bytes.Equal(h.Sum(nil), want), nil
}

// ListAttachments lists the whole files of visits, each of which p may
// read (see mayRead).
func (s *Service) ListAttachments(ctx context.Context, p store.Principal, visitIDs []string) ([]store.VisitAttachment, error) {
	var out []store.VisitAttachment
	err := s.db.View(ctx, func(tx store.Tx) error {
		vs, err := tx.Visits(ctx, visitIDs)
		if err != nil {
			return err
		}
		if len(vs) < len(slices.Compact(slices.Sorted(slices.Values(visitIDs)))) {
			return fmt.Errorf("%w: a visit asked for is not on the server", syncengine.ErrNotFound)
		}
		if err := s.mayRead(ctx, tx, p, vs, true); err != nil {
			return err
		}
		all, err := tx.VisitAttachments(ctx, visitIDs)
		for _, a := range all {
			if a.Complete {
				out = append(out, a)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	return out, nil
}

// errStop ends a read of a file after the piece wanted.
var errStop = errors.New("stop")

// DownloadAttachment sends a whole file from offset, piece by piece, each
// read in a transaction of its own (a whole copy no longer changes), to a
// caller who may read a visit it belongs to: from the copy of that
// visit's worker.
func (s *Service) DownloadAttachment(ctx context.Context, p store.Principal, sha string, offset int64, send func(size, at int64, data []byte) error) error {
	if err := syncengine.ValidateSHA256(sha); err != nil {
		return err
	}
	var key store.FileKey
	var size int64
	err := s.db.View(ctx, func(tx store.Tx) error {
		links, err := tx.AttachmentLinks(ctx, sha)
		if err != nil {
			return err
		}
		denied := fmt.Errorf("%w: no attachment %s", syncengine.ErrNotFound, sha)
		for _, l := range links {
			if !l.Complete {
				continue
			}
			vs, err := tx.Visits(ctx, []string{l.VisitID})
			if err != nil {
				return err
			}
			if denied = s.mayRead(ctx, tx, p, vs, true); denied == nil {
				key, size = store.FileKey{SHA256: sha, Owner: l.Owner}, l.Size
				return nil
			}
		}
		return denied
	})
	if err != nil {
		return fmt.Errorf("download attachment: %w", err)
	}
	if offset < 0 || offset > size {
		return fmt.Errorf("%w: offset %d is past the file's %d bytes", syncengine.ErrInvalid, offset, size)
	}
	at := offset
	for first := true; first || at < size; first = false {
		var piece []byte
		err := s.db.View(ctx, func(tx store.Tx) error {
			err := tx.ReadAttachment(ctx, key, at, func(start int64, data []byte) error {
				piece = data[at-start:]
				return errStop
			})
			if errors.Is(err, errStop) {
				err = nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("download attachment %s: %w", sha, err)
		}
		if len(piece) == 0 && at < size {
			return fmt.Errorf("download attachment %s: no bytes at %d of %d", sha, at, size)
		}
		if err := send(size, at, piece); err != nil {
			return err
		}
		at += int64(len(piece))
	}
	return nil
}

// mayRead says whether p may read the files of visits vs (of every one if
// all, else of any one): a worker's device those of visits to a household
// of its grids, an admin those of visits to a household of its subtree.
// Each grid is judged once: an export asks about pages of visits.
func (s *Service) mayRead(ctx context.Context, tx store.Tx, p store.Principal, vs []syncengine.Visit, all bool) error {
	var ids []string
	for _, v := range vs {
		ids = append(ids, v.HouseholdIDs...)
	}
	hs, err := tx.Households(ctx, ids)
	if err != nil {
		return err
	}
	gridOf := map[string]string{}
	for _, h := range hs {
		gridOf[h.ID] = h.GridID.Value
	}
	var yours []string
	if p.Kind == store.KindWorker {
		w, err := tx.Worker(ctx, p.ID)
		if err != nil {
			return err
		}
		yours = w.GridIDs
	}
	judged := map[string]error{}
	judge := func(grid string) error {
		if err, ok := judged[grid]; ok {
			return err
		}
		var err error
		if p.Kind == store.KindWorker {
			if !slices.Contains(yours, grid) {
				err = fmt.Errorf("%w: a visit is not to a household of your grids", syncengine.ErrOutOfScope)
			}
		} else {
			_, err = node(ctx, tx, p, authz.ReadReport, grid)
		}
		judged[grid] = err
		return err
	}
	var denied error
	for _, v := range vs {
		var verdict error = fmt.Errorf("%w: visit %s has no household", syncengine.ErrNotFound, v.ID)
		for _, h := range v.HouseholdIDs {
			if verdict = judge(gridOf[h]); verdict == nil {
				break
			}
		}
		switch {
		case verdict == nil && !all:
			return nil
		case verdict != nil && all:
			return verdict
		case verdict != nil:
			denied = verdict
		}
	}
	return denied
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/server/store"
)

var _ store.Files = (*repo)(nil)

func (r *repo) AttachmentState(ctx context.Context, sha string) (int64, bool, error) {
	var received int64
	var complete bool
	err := r.q.QueryRow(ctx, `SELECT received, complete FROM attachments WHERE sha256 = $1`+r.lock(), sha).Scan(&received, &complete)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read attachment %s: %w", sha, err)
	}
	return received, complete, nil
}

func (r *repo) AppendAttachment(ctx context.Context, sha string, size, offset int64, data []byte) error {
	// Two devices may upload the same file at once: the record, inserted
	// or locked here, orders them, and the later one finds the count moved
	// and runs again from its reading of it.
	_, err := r.q.Exec(ctx, `INSERT INTO attachments (sha256, size, received) VALUES ($1, $2, 0) ON CONFLICT (sha256) DO NOTHING`, sha, size)
	var received int64
	if err == nil {
		err = r.q.QueryRow(ctx, `SELECT received FROM attachments WHERE sha256 = $1 FOR UPDATE`, sha).Scan(&received)
	}
	if err == nil && received != offset {
		return fmt.Errorf("store attachment %s at %d: %w", sha, offset, errConflict)
	}
	if err == nil {
		_, err = r.q.Exec(ctx, `INSERT INTO attachment_chunks (sha256, pos, data) VALUES ($1, $2, $3)`, sha, offset, data)
	}
	if err == nil {
		_, err = r.q.Exec(ctx, `UPDATE attachments SET received = $1 WHERE sha256 = $2`, offset+int64(len(data)), sha)
	}
	if err != nil {
		return fmt.Errorf("store attachment %s at %d: %w", sha, offset, err)
	}
	return nil
}

func (r *repo) CompleteAttachment(ctx context.Context, sha string) error {
	if _, err := r.q.Exec(ctx, `UPDATE attachments SET complete = true WHERE sha256 = $1`, sha); err != nil {
		return fmt.Errorf("complete attachment %s: %w", sha, err)
	}
	return nil
}

func (r *repo) DropAttachment(ctx context.Context, sha string) error {
	if _, err := r.q.Exec(ctx, `DELETE FROM attachments WHERE sha256 = $1`, sha); err != nil {
		return fmt.Errorf("drop attachment %s: %w", sha, err)
	}
	return nil
}

func (r *repo) ReadAttachment(ctx context.Context, sha string, offset int64, fn func(int64, []byte) error) error {
	// One piece at a time: a file is up to 16 MiB and a reader holds one
	// piece of it.
	at := int64(-1)
	for {
		var data []byte
		err := r.q.QueryRow(ctx, `SELECT pos, data FROM attachment_chunks
			WHERE sha256 = $1 AND pos > $2 AND pos + length(data) > $3 ORDER BY pos LIMIT 1`, sha, at, offset).Scan(&at, &data)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read attachment %s: %w", sha, err)
		}
		if err := fn(at, data); err != nil {
			return err
		}
	}
}

func (r *repo) LinkAttachment(ctx context.Context, a store.VisitAttachment) error {
	_, err := r.q.Exec(ctx, `INSERT INTO visit_attachments (visit_id, sha256, name, media_type, size, linked_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (visit_id, sha256) DO NOTHING`,
		a.VisitID, a.SHA256, a.Name, a.MediaType, a.Size, a.LinkedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("link attachment %s to visit %s: %w", a.SHA256, a.VisitID, err)
	}
	return nil
}

func (r *repo) VisitAttachments(ctx context.Context, visitIDs []string) ([]store.VisitAttachment, error) {
	out, err := queryAll(ctx, r.q, `SELECT l.visit_id, l.sha256, l.name, l.media_type, l.size, l.linked_at, coalesce(a.complete, false)
		FROM visit_attachments l LEFT JOIN attachments a ON a.sha256 = l.sha256
		WHERE l.visit_id = ANY($1) ORDER BY l.visit_id, l.name, l.sha256`, func(s scanner) (store.VisitAttachment, error) {
		var a store.VisitAttachment
		var linked int64
		err := s.Scan(&a.VisitID, &a.SHA256, &a.Name, &a.MediaType, &a.Size, &linked, &a.Complete)
		a.LinkedAt = time.UnixMilli(linked).UTC()
		return a, err
	}, visitIDs)
	if err != nil {
		return nil, fmt.Errorf("read visits' attachments: %w", err)
	}
	return out, nil
}

func (r *repo) AttachmentVisits(ctx context.Context, sha string) ([]string, error) {
	out, err := queryAll(ctx, r.q, `SELECT visit_id FROM visit_attachments WHERE sha256 = $1 ORDER BY visit_id`,
		func(s scanner) (string, error) {
			var id string
			return id, s.Scan(&id)
		}, sha)
	if err != nil {
		return nil, fmt.Errorf("read the visits of attachment %s: %w", sha, err)
	}
	return out, nil
}

func (r *repo) UnlinkAttachments(ctx context.Context, visitIDs []string) ([]string, error) {
	if len(visitIDs) == 0 {
		return nil, nil
	}
	out, err := queryAll(ctx, r.q, `WITH gone AS (DELETE FROM visit_attachments WHERE visit_id = ANY($1) RETURNING sha256)
		SELECT DISTINCT g.sha256 FROM gone g
		WHERE NOT EXISTS (SELECT 1 FROM visit_attachments l WHERE l.sha256 = g.sha256 AND NOT (l.visit_id = ANY($1)))
		ORDER BY g.sha256`, func(s scanner) (string, error) {
		var sha string
		return sha, s.Scan(&sha)
	}, visitIDs)
	if err != nil {
		return nil, fmt.Errorf("unlink attachments: %w", err)
	}
	return out, nil
}

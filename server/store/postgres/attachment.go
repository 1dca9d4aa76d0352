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

func (r *repo) AttachmentState(ctx context.Context, k store.FileKey) (store.FileState, error) {
	var s store.FileState
	err := r.q.QueryRow(ctx, `SELECT size, received, complete FROM attachments WHERE sha256 = $1 AND owner = $2`+r.lock(), k.SHA256, k.Owner).
		Scan(&s.Size, &s.Received, &s.Complete)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.FileState{}, nil
	}
	if err != nil {
		return s, fmt.Errorf("read attachment %s: %w", k.SHA256, err)
	}
	return s, nil
}

func (r *repo) AppendAttachment(ctx context.Context, k store.FileKey, size, offset int64, data []byte) error {
	// Two phones of one worker may upload the same file at once: the
	// record, inserted or locked here, orders them, and the later one finds
	// the count moved and runs again from its reading of it.
	_, err := r.q.Exec(ctx, `INSERT INTO attachments (sha256, owner, size, received) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING`,
		k.SHA256, k.Owner, size)
	var received int64
	if err == nil {
		err = r.q.QueryRow(ctx, `SELECT received FROM attachments WHERE sha256 = $1 AND owner = $2 FOR UPDATE`, k.SHA256, k.Owner).Scan(&received)
	}
	if err == nil && received != offset {
		return fmt.Errorf("store attachment %s at %d: %w", k.SHA256, offset, errConflict)
	}
	if err == nil {
		_, err = r.q.Exec(ctx, `INSERT INTO attachment_chunks (sha256, owner, pos, data) VALUES ($1, $2, $3, $4)`, k.SHA256, k.Owner, offset, data)
	}
	if err == nil {
		_, err = r.q.Exec(ctx, `UPDATE attachments SET received = $1 WHERE sha256 = $2 AND owner = $3`, offset+int64(len(data)), k.SHA256, k.Owner)
	}
	if err != nil {
		return fmt.Errorf("store attachment %s at %d: %w", k.SHA256, offset, err)
	}
	return nil
}

func (r *repo) CompleteAttachment(ctx context.Context, k store.FileKey) error {
	if _, err := r.q.Exec(ctx, `UPDATE attachments SET complete = true WHERE sha256 = $1 AND owner = $2`, k.SHA256, k.Owner); err != nil {
		return fmt.Errorf("complete attachment %s: %w", k.SHA256, err)
	}
	return nil
}

func (r *repo) DropAttachment(ctx context.Context, k store.FileKey) error {
	if _, err := r.q.Exec(ctx, `DELETE FROM attachments WHERE sha256 = $1 AND owner = $2`, k.SHA256, k.Owner); err != nil {
		return fmt.Errorf("drop attachment %s: %w", k.SHA256, err)
	}
	return nil
}

func (r *repo) ReadAttachment(ctx context.Context, k store.FileKey, offset int64, fn func(int64, []byte) error) error {
	// One piece at a time: a file is up to 16 MiB and a reader holds one
	// piece of it.
	at := int64(-1)
	for {
		var data []byte
		err := r.q.QueryRow(ctx, `SELECT pos, data FROM attachment_chunks
			WHERE sha256 = $1 AND owner = $2 AND pos > $3 AND pos + length(data) > $4 ORDER BY pos LIMIT 1`, k.SHA256, k.Owner, at, offset).Scan(&at, &data)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read attachment %s: %w", k.SHA256, err)
		}
		if err := fn(at, data); err != nil {
			return err
		}
	}
}

func (r *repo) LinkAttachment(ctx context.Context, a store.VisitAttachment) error {
	_, err := r.q.Exec(ctx, `INSERT INTO visit_attachments (visit_id, sha256, owner, name, media_type, size, linked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (visit_id, sha256) DO NOTHING`,
		a.VisitID, a.SHA256, a.Owner, a.Name, a.MediaType, a.Size, a.LinkedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("link attachment %s to visit %s: %w", a.SHA256, a.VisitID, err)
	}
	return nil
}

const linkCols = `l.visit_id, l.sha256, l.owner, l.name, l.media_type, l.size, l.linked_at, coalesce(a.complete, false)
	FROM visit_attachments l LEFT JOIN attachments a ON a.sha256 = l.sha256 AND a.owner = l.owner`

func scanLink(s scanner) (store.VisitAttachment, error) {
	var a store.VisitAttachment
	var linked int64
	err := s.Scan(&a.VisitID, &a.SHA256, &a.Owner, &a.Name, &a.MediaType, &a.Size, &linked, &a.Complete)
	a.LinkedAt = time.UnixMilli(linked).UTC()
	return a, err
}

func (r *repo) VisitAttachments(ctx context.Context, visitIDs []string) ([]store.VisitAttachment, error) {
	out, err := queryAll(ctx, r.q, `SELECT `+linkCols+` WHERE l.visit_id = ANY($1) ORDER BY l.visit_id, l.name, l.sha256`, scanLink, visitIDs)
	if err != nil {
		return nil, fmt.Errorf("read visits' attachments: %w", err)
	}
	return out, nil
}

func (r *repo) AttachmentLinks(ctx context.Context, sha string) ([]store.VisitAttachment, error) {
	out, err := queryAll(ctx, r.q, `SELECT `+linkCols+` WHERE l.sha256 = $1 ORDER BY l.visit_id`, scanLink, sha)
	if err != nil {
		return nil, fmt.Errorf("read the links of attachment %s: %w", sha, err)
	}
	return out, nil
}

func (r *repo) UnlinkAttachments(ctx context.Context, visitIDs []string) ([]store.FileKey, error) {
	if len(visitIDs) == 0 {
		return nil, nil
	}
	out, err := queryAll(ctx, r.q, `WITH gone AS (DELETE FROM visit_attachments WHERE visit_id = ANY($1) RETURNING sha256, owner)
		SELECT DISTINCT g.sha256, g.owner FROM gone g
		WHERE NOT EXISTS (SELECT 1 FROM visit_attachments l WHERE l.sha256 = g.sha256 AND l.owner = g.owner AND NOT (l.visit_id = ANY($1)))
		ORDER BY g.sha256, g.owner`, func(s scanner) (store.FileKey, error) {
		var k store.FileKey
		return k, s.Scan(&k.SHA256, &k.Owner)
	}, visitIDs)
	if err != nil {
		return nil, fmt.Errorf("unlink attachments: %w", err)
	}
	return out, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/server/store"
)

var _ store.Files = (*tx)(nil)

func (t *tx) AttachmentState(ctx context.Context, sha string) (int64, bool, error) {
	var received int64
	var complete bool
	err := t.QueryRowContext(ctx, `SELECT received, complete FROM attachments WHERE sha256 = ?`, sha).Scan(&received, &complete)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read attachment %s: %w", sha, err)
	}
	return received, complete, nil
}

func (t *tx) AppendAttachment(ctx context.Context, sha string, size, offset int64, data []byte) error {
	_, err := t.ExecContext(ctx, `INSERT INTO attachments (sha256, size, received) VALUES (?, ?, 0) ON CONFLICT (sha256) DO NOTHING`, sha, size)
	if err == nil {
		_, err = t.ExecContext(ctx, `INSERT INTO attachment_chunks (sha256, pos, data) VALUES (?, ?, ?)`, sha, offset, data)
	}
	if err == nil {
		_, err = t.ExecContext(ctx, `UPDATE attachments SET received = ? WHERE sha256 = ?`, offset+int64(len(data)), sha)
	}
	if err != nil {
		return fmt.Errorf("store attachment %s at %d: %w", sha, offset, err)
	}
	return nil
}

func (t *tx) CompleteAttachment(ctx context.Context, sha string) error {
	if _, err := t.ExecContext(ctx, `UPDATE attachments SET complete = 1 WHERE sha256 = ?`, sha); err != nil {
		return fmt.Errorf("complete attachment %s: %w", sha, err)
	}
	return nil
}

func (t *tx) DropAttachment(ctx context.Context, sha string) error {
	if _, err := t.ExecContext(ctx, `DELETE FROM attachments WHERE sha256 = ?`, sha); err != nil {
		return fmt.Errorf("drop attachment %s: %w", sha, err)
	}
	return nil
}

func (t *tx) ReadAttachment(ctx context.Context, sha string, offset int64, fn func(int64, []byte) error) error {
	// One piece at a time: a file is up to 16 MiB and a reader holds one
	// piece of it.
	at := int64(-1)
	for {
		var data []byte
		err := t.QueryRowContext(ctx, `SELECT pos, data FROM attachment_chunks
			WHERE sha256 = ? AND pos > ? AND pos + length(data) > ? ORDER BY pos LIMIT 1`, sha, at, offset).Scan(&at, &data)
		if errors.Is(err, sql.ErrNoRows) {
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

func (t *tx) LinkAttachment(ctx context.Context, a store.VisitAttachment) error {
	_, err := t.ExecContext(ctx, `INSERT INTO visit_attachments (visit_id, sha256, name, media_type, size, linked_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (visit_id, sha256) DO NOTHING`,
		a.VisitID, a.SHA256, a.Name, a.MediaType, a.Size, a.LinkedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("link attachment %s to visit %s: %w", a.SHA256, a.VisitID, err)
	}
	return nil
}

func (t *tx) VisitAttachments(ctx context.Context, visitIDs []string) ([]store.VisitAttachment, error) {
	var out []store.VisitAttachment
	const chunk = 500
	for start := 0; start < len(visitIDs); start += chunk {
		part := visitIDs[start:min(start+chunk, len(visitIDs))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := t.QueryContext(ctx, `SELECT l.visit_id, l.sha256, l.name, l.media_type, l.size, l.linked_at, coalesce(a.complete, 0)
			FROM visit_attachments l LEFT JOIN attachments a ON a.sha256 = l.sha256
			WHERE l.visit_id IN (`+sqlitex.InPlaceholders(len(part))+`) ORDER BY l.visit_id, l.name, l.sha256`, args...)
		if err != nil {
			return nil, fmt.Errorf("read visits' attachments: %w", err)
		}
		for rows.Next() {
			var a store.VisitAttachment
			var linked int64
			if err := rows.Scan(&a.VisitID, &a.SHA256, &a.Name, &a.MediaType, &a.Size, &linked, &a.Complete); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read visits' attachments: %w", err)
			}
			a.LinkedAt = time.UnixMilli(linked).UTC()
			out = append(out, a)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read visits' attachments: %w", err)
		}
	}
	return out, nil
}

func (t *tx) AttachmentVisits(ctx context.Context, sha string) ([]string, error) {
	rows, err := t.QueryContext(ctx, `SELECT visit_id FROM visit_attachments WHERE sha256 = ? ORDER BY visit_id`, sha)
	if err != nil {
		return nil, fmt.Errorf("read the visits of attachment %s: %w", sha, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (t *tx) UnlinkAttachments(ctx context.Context, visitIDs []string) ([]string, error) {
	var orphans []string
	for _, v := range visitIDs {
		rows, err := t.QueryContext(ctx, `DELETE FROM visit_attachments WHERE visit_id = ? RETURNING sha256`, v)
		if err != nil {
			return nil, fmt.Errorf("unlink the attachments of visit %s: %w", v, err)
		}
		var shas []string
		for rows.Next() {
			var sha string
			if err := rows.Scan(&sha); err != nil {
				rows.Close()
				return nil, err
			}
			shas = append(shas, sha)
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return nil, fmt.Errorf("unlink the attachments of visit %s: %w", v, err)
		}
		for _, sha := range shas {
			var linked bool
			if err := t.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM visit_attachments WHERE sha256 = ?)`, sha).Scan(&linked); err != nil {
				return nil, err
			}
			if !linked && !slices.Contains(orphans, sha) {
				orphans = append(orphans, sha)
			}
		}
	}
	return orphans, nil
}

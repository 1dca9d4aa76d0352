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

func (t *tx) AttachmentState(ctx context.Context, k store.FileKey) (store.FileState, error) {
	var s store.FileState
	err := t.QueryRowContext(ctx, `SELECT size, received, complete FROM attachments WHERE sha256 = ? AND owner = ?`, k.SHA256, k.Owner).
		Scan(&s.Size, &s.Received, &s.Complete)
	if errors.Is(err, sql.ErrNoRows) {
		return store.FileState{}, nil
	}
	if err != nil {
		return s, fmt.Errorf("read attachment %s: %w", k.SHA256, err)
	}
	return s, nil
}

func (t *tx) AppendAttachment(ctx context.Context, k store.FileKey, size, offset int64, data []byte) error {
	_, err := t.ExecContext(ctx, `INSERT INTO attachments (sha256, owner, size, received) VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING`,
		k.SHA256, k.Owner, size)
	if err == nil {
		_, err = t.ExecContext(ctx, `INSERT INTO attachment_chunks (sha256, owner, pos, data) VALUES (?, ?, ?, ?)`, k.SHA256, k.Owner, offset, data)
	}
	if err == nil {
		_, err = t.ExecContext(ctx, `UPDATE attachments SET received = ? WHERE sha256 = ? AND owner = ?`, offset+int64(len(data)), k.SHA256, k.Owner)
	}
	if err != nil {
		return fmt.Errorf("store attachment %s at %d: %w", k.SHA256, offset, err)
	}
	return nil
}

func (t *tx) CompleteAttachment(ctx context.Context, k store.FileKey) error {
	if _, err := t.ExecContext(ctx, `UPDATE attachments SET complete = 1 WHERE sha256 = ? AND owner = ?`, k.SHA256, k.Owner); err != nil {
		return fmt.Errorf("complete attachment %s: %w", k.SHA256, err)
	}
	return nil
}

func (t *tx) DropAttachment(ctx context.Context, k store.FileKey) error {
	if _, err := t.ExecContext(ctx, `DELETE FROM attachments WHERE sha256 = ? AND owner = ?`, k.SHA256, k.Owner); err != nil {
		return fmt.Errorf("drop attachment %s: %w", k.SHA256, err)
	}
	return nil
}

func (t *tx) ReadAttachment(ctx context.Context, k store.FileKey, offset int64, fn func(int64, []byte) error) error {
	// One piece at a time: a file is up to 16 MiB and a reader holds one
	// piece of it.
	at := int64(-1)
	for {
		var data []byte
		err := t.QueryRowContext(ctx, `SELECT pos, data FROM attachment_chunks
			WHERE sha256 = ? AND owner = ? AND pos > ? AND pos + length(data) > ? ORDER BY pos LIMIT 1`, k.SHA256, k.Owner, at, offset).Scan(&at, &data)
		if errors.Is(err, sql.ErrNoRows) {
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

func (t *tx) LinkAttachment(ctx context.Context, a store.VisitAttachment) error {
	_, err := t.ExecContext(ctx, `INSERT INTO visit_attachments (visit_id, sha256, owner, name, media_type, size, linked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (visit_id, sha256) DO NOTHING`,
		a.VisitID, a.SHA256, a.Owner, a.Name, a.MediaType, a.Size, a.LinkedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("link attachment %s to visit %s: %w", a.SHA256, a.VisitID, err)
	}
	return nil
}

const linkCols = `l.visit_id, l.sha256, l.owner, l.name, l.media_type, l.size, l.linked_at, coalesce(a.complete, 0)
	FROM visit_attachments l LEFT JOIN attachments a ON a.sha256 = l.sha256 AND a.owner = l.owner`

func scanLinks(rows *sql.Rows) ([]store.VisitAttachment, error) {
	defer rows.Close()
	var out []store.VisitAttachment
	for rows.Next() {
		var a store.VisitAttachment
		var linked int64
		if err := rows.Scan(&a.VisitID, &a.SHA256, &a.Owner, &a.Name, &a.MediaType, &a.Size, &linked, &a.Complete); err != nil {
			return nil, err
		}
		a.LinkedAt = time.UnixMilli(linked).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

func (t *tx) VisitAttachments(ctx context.Context, visitIDs []string) ([]store.VisitAttachment, error) {
	var out []store.VisitAttachment
	for start := 0; start < len(visitIDs); start += maxInList {
		part := visitIDs[start:min(start+maxInList, len(visitIDs))]
		rows, err := t.QueryContext(ctx, `SELECT `+linkCols+` WHERE l.visit_id IN (`+sqlitex.InPlaceholders(len(part))+`)
			ORDER BY l.visit_id, l.name, l.sha256`, anys(part)...)
		if err != nil {
			return nil, fmt.Errorf("read visits' attachments: %w", err)
		}
		links, err := scanLinks(rows)
		if err != nil {
			return nil, fmt.Errorf("read visits' attachments: %w", err)
		}
		out = append(out, links...)
	}
	// Parts of sorted ids would come in order; unsorted ones need this.
	slices.SortStableFunc(out, func(a, b store.VisitAttachment) int {
		switch {
		case a.VisitID < b.VisitID:
			return -1
		case a.VisitID > b.VisitID:
			return 1
		}
		return 0
	})
	return out, nil
}

func (t *tx) AttachmentLinks(ctx context.Context, sha string) ([]store.VisitAttachment, error) {
	rows, err := t.QueryContext(ctx, `SELECT `+linkCols+` WHERE l.sha256 = ? ORDER BY l.visit_id`, sha)
	if err != nil {
		return nil, fmt.Errorf("read the links of attachment %s: %w", sha, err)
	}
	out, err := scanLinks(rows)
	if err != nil {
		return nil, fmt.Errorf("read the links of attachment %s: %w", sha, err)
	}
	return out, nil
}

func (t *tx) UnlinkAttachments(ctx context.Context, visitIDs []string) ([]store.FileKey, error) {
	var orphans []store.FileKey
	for _, v := range visitIDs {
		rows, err := t.QueryContext(ctx, `DELETE FROM visit_attachments WHERE visit_id = ? RETURNING sha256, owner`, v)
		if err != nil {
			return nil, fmt.Errorf("unlink the attachments of visit %s: %w", v, err)
		}
		var keys []store.FileKey
		for rows.Next() {
			var k store.FileKey
			if err := rows.Scan(&k.SHA256, &k.Owner); err != nil {
				rows.Close()
				return nil, err
			}
			keys = append(keys, k)
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return nil, fmt.Errorf("unlink the attachments of visit %s: %w", v, err)
		}
		for _, k := range keys {
			var linked bool
			if err := t.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM visit_attachments WHERE sha256 = ? AND owner = ?)`,
				k.SHA256, k.Owner).Scan(&linked); err != nil {
				return nil, err
			}
			if !linked && !slices.Contains(orphans, k) {
				orphans = append(orphans, k)
			}
		}
	}
	return orphans, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
)

func devices(ctx context.Context, q statedb.Querier, where string, arg string) ([]store.Device, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, worker_id, label, created_at, revoked_at, revoked_reason
		FROM credentials WHERE worker_id IS NOT NULL AND `+where+` ORDER BY created_at, id`, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		var d store.Device
		var enrolled int64
		var revoked sql.NullInt64
		if err := rows.Scan(&d.ID, &d.WorkerID, &d.Name, &enrolled, &revoked, &d.RevokedReason); err != nil {
			return nil, err
		}
		d.EnrolledAt = time.Unix(enrolled, 0).UTC()
		if revoked.Valid {
			d.RevokedAt = time.Unix(revoked.Int64, 0).UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

package statedb

import (
	"context"
	"fmt"

	"github.com/doorbook/doorbook/syncengine"
)

const categoryCols = `code, name_zh, name_en, parent_code, revisit_days, key_group, deleted, clocks`

func scanCategory(s scanner) (syncengine.Category, error) {
	var c syncengine.Category
	var clocks []byte
	err := s.Scan(&c.Code, &c.NameZH.Value, &c.NameEN.Value, &c.ParentCode.Value, &c.RevisitDays.Value,
		&c.KeyGroup.Value, &c.Deleted.Value, &clocks)
	if err != nil {
		return c, err
	}
	return c, decodeClocks(clocks, &c, "category "+c.Code)
}

// decodeClocks restores a row's field clocks from their stored BLOB.
func decodeClocks(blob []byte, row interface {
	Clocks() []syncengine.Clock
	SetClocks([]syncengine.Clock)
}, what string) error {
	c := make([]syncengine.Clock, len(row.Clocks()))
	if err := syncengine.DecodeClocks(blob, c); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	row.SetClocks(c)
	return nil
}

// GetCategory loads one category; ok is false if there is none.
func GetCategory(ctx context.Context, q Querier, code string) (c syncengine.Category, ok bool, err error) {
	return getRow(ctx, q, "category", `SELECT `+categoryCols+` FROM categories WHERE code = ?`, code, scanCategory)
}

// MergeCategory merges a category into the stored one (creating it), and
// stamps a changed row with seq (the server's feed position; 0 on a phone).
func MergeCategory(ctx context.Context, q Querier, delta *syncengine.Category, seq uint64) (merged syncengine.Category, changed bool, err error) {
	cur, ok, err := GetCategory(ctx, q, delta.Code)
	if err != nil {
		return cur, false, err
	}
	if !ok {
		cur = syncengine.Category{Code: delta.Code}
	}
	merged, _, changed, err = mergeRow(ctx, q, cur, ok, delta, func(ctx context.Context, q Querier, c *syncengine.Category) error {
		return PutCategory(ctx, q, c, seq)
	})
	return merged, changed, err
}

// PutCategory writes a category whole, stamped with seq.
func PutCategory(ctx context.Context, q Querier, c *syncengine.Category, seq uint64) error {
	_, err := q.ExecContext(ctx, `INSERT OR REPLACE INTO categories (`+categoryCols+`, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Code, c.NameZH.Value, c.NameEN.Value, c.ParentCode.Value, c.RevisitDays.Value, c.KeyGroup.Value, c.Deleted.Value,
		syncengine.EncodeClocks(c.Clocks()), int64(seq))
	if err != nil {
		return fmt.Errorf("put category %s: %w", c.Code, err)
	}
	return nil
}

// Categories loads the categories changed after feed position since (all
// with 0), deleted ones included, by code.
func Categories(ctx context.Context, q Querier, since uint64) ([]syncengine.Category, error) {
	return loadAll(ctx, q, `SELECT `+categoryCols+` FROM categories WHERE seq > ? OR ? = 0 ORDER BY code`, since, scanCategory)
}

const campaignCols = `id, node_id, name, starts_at, ends_at, quotas, questionnaire, deleted, clocks`

func scanCampaign(s scanner) (syncengine.Campaign, error) {
	var c syncengine.Campaign
	var clocks []byte
	err := s.Scan(&c.ID, &c.NodeID.Value, &c.Name.Value, &c.StartsAt.Value, &c.EndsAt.Value, &c.Quotas.Value,
		&c.Questionnaire.Value, &c.Deleted.Value, &clocks)
	if err != nil {
		return c, err
	}
	return c, decodeClocks(clocks, &c, "campaign "+c.ID)
}

// GetCampaign loads one campaign; ok is false if there is none.
func GetCampaign(ctx context.Context, q Querier, id string) (c syncengine.Campaign, ok bool, err error) {
	return getRow(ctx, q, "campaign", `SELECT `+campaignCols+` FROM campaigns WHERE id = ?`, id, scanCampaign)
}

// MergeCampaign merges a campaign into the stored one, like MergeCategory.
func MergeCampaign(ctx context.Context, q Querier, delta *syncengine.Campaign, seq uint64) (merged syncengine.Campaign, changed bool, err error) {
	cur, ok, err := GetCampaign(ctx, q, delta.ID)
	if err != nil {
		return cur, false, err
	}
	if !ok {
		cur = syncengine.Campaign{ID: delta.ID}
	}
	merged, _, changed, err = mergeRow(ctx, q, cur, ok, delta, func(ctx context.Context, q Querier, c *syncengine.Campaign) error {
		return PutCampaign(ctx, q, c, seq)
	})
	return merged, changed, err
}

// PutCampaign writes a campaign whole, stamped with seq.
func PutCampaign(ctx context.Context, q Querier, c *syncengine.Campaign, seq uint64) error {
	_, err := q.ExecContext(ctx, `INSERT OR REPLACE INTO campaigns (`+campaignCols+`, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.NodeID.Value, c.Name.Value, c.StartsAt.Value, c.EndsAt.Value, c.Quotas.Value, c.Questionnaire.Value,
		c.Deleted.Value, syncengine.EncodeClocks(c.Clocks()), int64(seq))
	if err != nil {
		return fmt.Errorf("put campaign %s: %w", c.ID, err)
	}
	return SyncWindows(ctx, q)
}

// Campaigns loads the campaigns changed after feed position since (all with
// 0), deleted ones included, by window and id.
func Campaigns(ctx context.Context, q Querier, since uint64) ([]syncengine.Campaign, error) {
	return loadAll(ctx, q, `SELECT `+campaignCols+` FROM campaigns WHERE seq > ? OR ? = 0 ORDER BY starts_at, id`, since, scanCampaign)
}

// ApplyReference merges reference rows a replica received.
func ApplyReference(ctx context.Context, q Querier, r *syncengine.Reference) error {
	for i := range r.Categories {
		if _, _, err := MergeCategory(ctx, q, &r.Categories[i], 0); err != nil {
			return err
		}
	}
	for i := range r.Campaigns {
		if _, _, err := MergeCampaign(ctx, q, &r.Campaigns[i], 0); err != nil {
			return err
		}
	}
	return nil
}

func loadAll[T any](ctx context.Context, q Querier, query string, since uint64, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, int64(since), int64(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

package postgres

import (
	"slices"
	"testing"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/fieldwork/fieldworktest"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// TestFieldRows holds FieldRows, and HouseholdRows given the households of
// the grids, to the contract of fieldwork.Rows.
func TestFieldRows(t *testing.T) {
	t.Parallel()
	t.Run("Grids", func(t *testing.T) { t.Parallel(); testFieldRows(t, false) })
	t.Run("Households", func(t *testing.T) { t.Parallel(); testFieldRows(t, true) })
}

func testFieldRows(t *testing.T, households bool) {
	fieldworktest.Run(t, func(t *testing.T, b *syncengine.Bundle, grids []string) fieldwork.Rows {
		t.Helper()
		db, _ := open(t, "")
		ctx := t.Context()
		err := db.Update(ctx, func(tx store.Tx) error {
			for i := range b.Households {
				if err := tx.PutHousehold(ctx, &b.Households[i]); err != nil {
					return err
				}
			}
			for i := range b.Persons {
				if err := tx.PutPerson(ctx, &b.Persons[i]); err != nil {
					return err
				}
			}
			for i := range b.Tags {
				if err := tx.PutTag(ctx, &b.Tags[i]); err != nil {
					return err
				}
			}
			for i := range b.Visits {
				if _, err := tx.InsertVisit(ctx, &b.Visits[i]); err != nil {
					return err
				}
			}
			for i := range b.Amendments {
				if _, err := tx.InsertAmendment(ctx, &b.Amendments[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("store: %v", err)
		}
		// Outside a transaction: each read on a connection of the pool.
		if households {
			var ids []string
			for _, h := range b.Households {
				if slices.Contains(grids, h.GridID.Value) {
					ids = append(ids, h.ID)
				}
			}
			return (&repo{q: db.pool}).HouseholdRows(ids)
		}
		return (&repo{q: db.pool}).FieldRows(grids)
	})
}

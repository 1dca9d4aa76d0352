package sdk

import (
	"context"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// restamper maps each old clock to one fresh clock for a whole re-stamp
// pass, so that changes sharing a clock (a tag's add and its remove) and
// the local rows keep sharing it.
type restamper struct {
	clock *syncengine.HybridClock
	remap map[syncengine.Clock]syncengine.Clock
}

func (rs *restamper) fresh(old syncengine.Clock) syncengine.Clock {
	if c, ok := rs.remap[old]; ok {
		return c
	}
	c := rs.clock.Now()
	rs.remap[old] = c
	return c
}

// restampChange gives one unsent change fresh clocks, and the local row the
// same where the row still holds the change's old clock (a later local write
// may already have replaced it, with a clock that is re-stamped in turn).
func (rs *restamper) restampChange(ctx context.Context, tx *sqlitex.Tx, c *syncengine.Change) error {
	replace := func(clocks []syncengine.Clock, local []syncengine.Clock) ([]syncengine.Clock, []syncengine.Clock) {
		for i, old := range clocks {
			if old.IsZero() {
				continue
			}
			if i < len(local) && local[i] == old {
				local[i] = rs.fresh(old)
			}
			clocks[i] = rs.fresh(old)
		}
		return clocks, local
	}
	switch {
	case c.Household != nil:
		cur, ok, err := statedb.GetHousehold(ctx, tx, c.Household.ID)
		if err != nil {
			return err
		}
		dc, lc := replace(c.Household.Clocks(), cur.Clocks())
		c.Household.SetClocks(dc)
		if !ok {
			return nil
		}
		cur.SetClocks(lc)
		return statedb.PutHousehold(ctx, tx, &cur)
	case c.Person != nil:
		cur, ok, err := statedb.GetPerson(ctx, tx, c.Person.ID)
		if err != nil {
			return err
		}
		dc, lc := replace(c.Person.Clocks(), cur.Clocks())
		c.Person.SetClocks(dc)
		if !ok {
			return nil
		}
		cur.SetClocks(lc)
		return statedb.PutPerson(ctx, tx, &cur)
	case c.Tag != nil:
		old := c.Tag.Clock
		c.Tag.Clock = rs.fresh(old)
		return statedb.Restamp(ctx, tx, "tag_elements", c.Tag.AddID, old, c.Tag.Clock)
	case c.Visit != nil:
		old := c.Visit.Clock
		c.Visit.Clock = rs.fresh(old)
		return statedb.Restamp(ctx, tx, "visits", c.Visit.ID, old, c.Visit.Clock)
	case c.Amendment != nil:
		old := c.Amendment.Clock
		c.Amendment.Clock = rs.fresh(old)
		return statedb.Restamp(ctx, tx, "visit_amendments", c.Amendment.ID, old, c.Amendment.Clock)
	}
	return nil
}

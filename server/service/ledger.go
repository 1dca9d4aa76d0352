package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// ImportLedger reads an office's ledger file into the grids of a node of
// p's subtree (see package ledger for what a row does). The plan is made
// from one snapshot of the node; the real run writes every row not
// refused in one transaction, as Import does, and records it in the audit
// log. One import runs at a time per server process: an .xlsx inflates to
// several times its size while it is read.
func (s *Service) ImportLedger(ctx context.Context, p store.Principal, in store.LedgerImport) (store.LedgerReport, error) {
	var rep store.LedgerReport
	if err := authz.Decide(p, authz.ManageOrg, authz.Anywhere); err != nil {
		return rep, err
	}
	select {
	case s.imports <- struct{}{}:
		defer func() { <-s.imports }()
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	t, err := ledger.Read(in.File, in.Name)
	if err != nil {
		return rep, fmt.Errorf("import ledger: %w", err)
	}
	rep.Sheet, rep.Unknown = t.Sheet, t.Unknown
	var set ledger.Setting
	// Each write must be newer than what the households and their persons
	// hold.
	var observed syncengine.Clock
	err = s.db.View(ctx, func(tx store.Tx) error {
		var err error
		set, observed, err = ledgerSetting(ctx, tx, p, in.NodeID, t)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("import ledger: %w", err)
	}
	rep.Rows = ledger.Plan(t, set)
	// Sized once: a street's ledger is 50,000 households and three times
	// as many persons, and growing these by appends held each twice.
	var nh, np, nt int
	for _, o := range rep.Rows {
		if o.Action == ledger.Create || o.Action == ledger.Update {
			nh, np, nt = nh+1, np+len(o.Persons)+len(o.Moves), nt+len(o.Categories)
		}
	}
	var b syncengine.Bundle
	if !in.DryRun {
		b = syncengine.Bundle{Households: make([]syncengine.Household, 0, nh), Persons: make([]syncengine.Person, 0, np), Tags: make([]syncengine.TagElement, 0, nt)}
	}
	for i := range rep.Rows {
		o := &rep.Rows[i]
		if o.Action != ledger.Create && o.Action != ledger.Update || in.DryRun {
			continue
		}
		rows := o.Rows(newID(), newID, func() syncengine.Clock { return in.Clock(observed) })
		if o.HouseholdID == "" && len(rows.Households) > 0 {
			o.HouseholdID = rows.Households[0].ID
		}
		b.Households = append(b.Households, rows.Households...)
		b.Persons = append(b.Persons, rows.Persons...)
		b.Tags = append(b.Tags, rows.Tags...)
	}
	entry := store.AuditEntry{ID: newID(), At: s.now(), AdminID: p.ID, Action: "import ledger", NodeID: in.NodeID}
	if in.DryRun {
		entry.Action = "import ledger (dry run)"
	}
	write := len(b.Households)+len(b.Persons)+len(b.Tags) > 0
	err = s.db.Update(ctx, func(tx store.Tx) error {
		if write {
			if err := importRows(ctx, tx, p, b); err != nil {
				return err
			}
		}
		return tx.InsertAudit(ctx, entry)
	})
	if err != nil {
		return rep, fmt.Errorf("import ledger: %w", err)
	}
	rep.Applied = write
	return rep, nil
}

// ledgerSetting reads what a plan for t into node needs: the node's
// grids, the categories, the node's households with their persons and
// categories, and which of the ids t gives are households elsewhere.
func ledgerSetting(ctx context.Context, tx store.Tx, p store.Principal, nodeID string, t *ledger.Table) (ledger.Setting, syncengine.Clock, error) {
	var set ledger.Setting
	var newest syncengine.Clock
	if _, err := node(ctx, tx, p, authz.ManageOrg, nodeID); err != nil {
		return set, newest, err
	}
	sub, err := tx.Subtree(ctx, nodeID)
	if err != nil {
		return set, newest, err
	}
	nodes := make(map[string]store.OrgNode, len(sub))
	for _, n := range sub {
		nodes[n.ID] = n
	}
	var grids []string
	for _, n := range sub {
		if n.Level != store.LevelGrid {
			continue
		}
		community := ""
		if c, ok := nodes[n.ParentID]; ok {
			community = c.Name
		} else if c, err := tx.Node(ctx, n.ParentID); err == nil {
			community = c.Name // the node imported into is the grid itself
		}
		set.Grids = append(set.Grids, ledger.Grid{ID: n.ID, Name: n.Name, Community: community})
		grids = append(grids, n.ID)
	}
	if set.Categories, err = tx.Categories(ctx, 0); err != nil {
		return set, newest, err
	}
	ids := map[string]bool{}
	for after := ""; ; {
		page, err := tx.LiveHouseholdIDs(ctx, grids, after, 2000)
		if err != nil || len(page) == 0 {
			if err != nil {
				return set, newest, err
			}
			break
		}
		after = page[len(page)-1]
		b, err := tx.Ledgers(ctx, page)
		if err != nil {
			return set, newest, err
		}
		persons := map[string][]string{}
		people := map[string][]ledger.Person{}
		for _, pr := range b.Persons {
			if c := pr.MaxClock(); c.Compare(newest) > 0 {
				newest = c
			}
			if !pr.Deleted.Value {
				persons[pr.HouseholdID] = append(persons[pr.HouseholdID], pr.Name.Value)
				people[pr.HouseholdID] = append(people[pr.HouseholdID], ledger.Person{ID: pr.ID, Name: pr.Name.Value, Residence: pr.Residence.Value})
			}
		}
		tags := map[string][]syncengine.TagElement{}
		for _, tg := range b.Tags {
			tags[tg.HouseholdID] = append(tags[tg.HouseholdID], tg)
		}
		for _, h := range b.Households {
			if c := h.MaxClock(); c.Compare(newest) > 0 {
				newest = c
			}
			if h.Deleted.Value {
				continue
			}
			ids[h.ID] = true
			set.Households = append(set.Households, ledger.Current{Household: h, Persons: persons[h.ID], People: people[h.ID],
				Categories: syncengine.Categories(tags[h.ID])})
		}
	}
	// The ids the file gives that are no household of the node: which of
	// them are households elsewhere, read a page at a time.
	var others []string
	seen := map[string]bool{}
	for _, r := range t.Rows {
		id := strings.ToLower(r.Cells[ledger.FieldID])
		if syncengine.IsID(id) && !ids[id] && !seen[id] {
			seen[id] = true
			others = append(others, id)
		}
	}
	set.Taken = map[string]bool{}
	for len(others) > 0 {
		page := others[:min(len(others), pageSize)]
		others = others[len(page):]
		found, err := tx.Households(ctx, page)
		if err != nil {
			return set, newest, err
		}
		for _, h := range found {
			set.Taken[h.ID] = true
		}
	}
	return set, newest, nil
}

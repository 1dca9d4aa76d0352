package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

// visitDetails are the flags of what a visit records beyond who, where and
// when.
type visitDetails struct {
	materials, findings, reasons, answers multi
	revisitDue, campaign                  *string
}

func (d *visitDetails) flags(fs *flag.FlagSet) {
	fs.Var(&d.materials, "material", "`material` handed out (repeat)")
	fs.Var(&d.findings, "finding", "`KIND[:NOTE]` found (repeat)")
	fs.Var(&d.reasons, "revisit", "`reason` for a follow-up visit (repeat)")
	d.revisitDue = fs.String("revisit-due", "", "follow-up due `time` (default 7 days after the visit)")
	d.campaign = fs.String("campaign", "", "campaign `id` the answers follow (default: the one running now)")
	fs.Var(&d.answers, "answer", "survey answer `QUESTION=VALUE` (repeat)")
}

func (d *visitDetails) fill(ctx context.Context, r *sdk.Replica, in *sdk.VisitInput) error {
	for _, m := range d.materials {
		v, err := syncengine.ParseMaterial(m)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		in.Materials = append(in.Materials, v)
	}
	for _, f := range d.findings {
		kind, note, _ := strings.Cut(f, ":")
		k, err := syncengine.ParseFindingKind(kind)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		in.Findings = append(in.Findings, syncengine.Finding{Kind: k, Note: note})
	}
	for _, s := range d.reasons {
		v, err := syncengine.ParseRevisitReason(s)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		in.RevisitReasons = append(in.RevisitReasons, v)
	}
	due, err := parseTime(*d.revisitDue)
	if err != nil {
		return err
	}
	in.RevisitDue = due
	if len(d.answers) == 0 {
		return nil
	}
	in.CampaignID = *d.campaign
	if in.CampaignID == "" {
		at := in.VisitedAt
		if at.IsZero() {
			at = time.Now()
		}
		cs, err := r.Campaigns(ctx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.In(at) {
				in.CampaignID = c.ID
			}
		}
		if in.CampaignID == "" {
			return fmt.Errorf("%w: no campaign runs at the visit's time: name one with --campaign", errUsage)
		}
	}
	for _, a := range d.answers {
		q, v, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return fmt.Errorf("%w: --answer %q: want QUESTION=NUMBER", errUsage, a)
		}
		in.Answers = append(in.Answers, syncengine.SurveyAnswer{Question: q, Value: int32(n)})
	}
	return nil
}

func (c *workerCmd) item(args []string) error {
	fs := c.flags("item")
	visit := fs.String("visit", "", "visit `id` that found the item")
	finding := fs.Uint("finding", 0, "the finding's `number` in the visit, from 0")
	to := fs.String("to", "", "new `state`: assigned, resolved or closed")
	note := fs.String("note", "", "a `note`")
	unit := fs.String("unit", "", "responsible `unit` (assigned)")
	var coUnits multi
	fs.Var(&coUnits, "co-unit", "a `unit` that helps the responsible one (assigned; repeat)")
	deadline := fs.String("deadline", "", "deadline `time` (assigned)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("visit", *visit); err != nil {
		return err
	}
	kind, err := syncengine.ParseItemUpdate(*to)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	when, err := parseTime(*deadline)
	if err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	id, err := c.replica.UpdateItem(c.ctx, *visit, uint32(*finding), kind, *note, *unit, when, coUnits...)
	if err != nil {
		return err
	}
	return c.done("updated item", id)
}

type itemJSON struct {
	VisitID    string   `json:"visit_id"`
	Finding    uint32   `json:"finding"`
	Kind       string   `json:"kind"`
	Note       string   `json:"note"`
	Households []string `json:"household_ids"`
	ReportedAt string   `json:"reported_at"`
	State      string   `json:"state"`
	Unit       string   `json:"unit,omitempty"`
	Deadline   string   `json:"deadline,omitempty"`
	Overdue    bool     `json:"overdue"`
}

func (c *workerCmd) items(args []string) error {
	if err := c.parse(c.flags("items"), args); err != nil {
		return err
	}
	now := time.Now()
	if err := c.ready(); err != nil {
		return err
	}
	items, err := c.replica.Items(c.ctx, now)
	if err != nil {
		return err
	}
	out := []itemJSON{}
	for _, it := range items {
		j := itemJSON{VisitID: it.VisitID, Finding: it.Finding, Kind: it.Kind.String(), Note: it.Note, Households: it.HouseholdIDs,
			ReportedAt: it.ReportedAt.Format(time.RFC3339), State: it.State.String(), Unit: it.Unit, Overdue: it.Overdue(now)}
		if !it.Deadline.IsZero() {
			j.Deadline = it.Deadline.Format(time.RFC3339)
		}
		out = append(out, j)
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "VISIT\tFINDING\tKIND\tSTATE\tUNIT\tDEADLINE\tNOTE")
		for _, j := range out {
			state := j.State
			if j.Overdue {
				state += " (overdue)"
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", j.VisitID, j.Finding, j.Kind, state, j.Unit, j.Deadline, j.Note)
		}
	})
}

type dueJSON struct {
	Kind        string `json:"kind"`
	HouseholdID string `json:"household_id"`
	GridID      string `json:"grid_id"`
	HeadName    string `json:"head_name"`
	Address     string `json:"address"`
	Reason      string `json:"reason"`
}

func (c *workerCmd) due(args []string) error {
	fs := c.flags("due")
	campaign := fs.String("campaign", "", "campaign `id` (default: the one running now)")
	limit := fs.Int("limit", 0, "show at most `N` (0: all)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	items, err := c.replica.Due(c.ctx, *campaign, time.Now())
	if err != nil {
		return err
	}
	if *limit > 0 && len(items) > *limit {
		items = items[:*limit]
	}
	out := []dueJSON{}
	for _, d := range items {
		h := d.Household
		out = append(out, dueJSON{d.Kind.String(), h.ID, h.GridID, h.HeadName, h.Address, d.Reason})
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "KIND\tHOUSEHOLD\tHEAD\tADDRESS\tREASON")
		for _, d := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.Kind, d.HouseholdID, d.HeadName, d.Address, d.Reason)
		}
	})
}

func (c *workerCmd) progress(args []string) error {
	fs := c.flags("progress")
	campaign := fs.String("campaign", "", "campaign `id` (default: the one running now)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	p, camp, err := c.replica.Progress(c.ctx, *campaign, time.Now())
	if err != nil {
		return err
	}
	type gridJSON struct {
		GridID     string `json:"grid_id"`
		Households int    `json:"households"`
		Visited    int    `json:"visited"`
	}
	out := struct {
		CampaignID string     `json:"campaign_id"`
		Campaign   string     `json:"campaign"`
		Visited    int        `json:"visited"`
		Quota      uint32     `json:"quota"`
		Grids      []gridJSON `json:"grids"`
	}{CampaignID: camp.ID, Campaign: camp.Name.Value, Visited: p.Visited, Quota: p.Quota, Grids: []gridJSON{}}
	for _, g := range p.Grids {
		out.Grids = append(out.Grids, gridJSON{g.GridID, g.Households, g.Visited})
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "campaign %s: you visited %d households, quota %d\n", out.Campaign, out.Visited, out.Quota)
		fmt.Fprintln(w, "GRID\tHOUSEHOLDS\tVISITED\tCOVERAGE")
		for _, g := range out.Grids {
			fmt.Fprintf(w, "%s\t%d\t%d\t%.1f%%\n", g.GridID, g.Households, g.Visited, 100*float64(g.Visited)/float64(max(g.Households, 1)))
		}
	})
}

type categoryJSON struct {
	Code        string `json:"code"`
	NameZH      string `json:"name_zh"`
	NameEN      string `json:"name_en"`
	Parent      string `json:"parent_code,omitempty"`
	RevisitDays int64  `json:"revisit_days"`
	KeyGroup    bool   `json:"key_group"`
	Deleted     bool   `json:"deleted,omitempty"`
}

func printCategories(out output, cats []categoryJSON) error {
	return out.print(cats, func(w io.Writer) {
		fmt.Fprintln(w, "CODE\tGROUP\tNAME\tEVERY (DAYS)\tKEY GROUP")
		for _, c := range cats {
			name := c.NameZH + " " + c.NameEN
			if c.Deleted {
				name += " (deleted)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%v\n", c.Code, c.Parent, name, c.RevisitDays, c.KeyGroup)
		}
	})
}

func (c *workerCmd) categories(args []string) error {
	if err := c.parse(c.flags("categories"), args); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	cats, err := c.replica.Categories(c.ctx)
	if err != nil {
		return err
	}
	out := []categoryJSON{}
	for _, k := range cats {
		out = append(out, categoryJSON{k.Code, k.NameZH.Value, k.NameEN.Value, k.ParentCode.Value, k.RevisitDays.Value, k.KeyGroup.Value, false})
	}
	return printCategories(c.out, out)
}

type campaignJSON struct {
	ID       string         `json:"id"`
	NodeID   string         `json:"node_id"`
	Name     string         `json:"name"`
	StartsAt string         `json:"starts_at"`
	EndsAt   string         `json:"ends_at"`
	Quotas   map[string]int `json:"quotas"`
	Deleted  bool           `json:"deleted,omitempty"`
}

func printCampaigns(out output, cs []campaignJSON) error {
	return out.print(cs, func(w io.Writer) {
		fmt.Fprintln(w, "CAMPAIGN\tNAME\tFROM\tUNTIL\tQUOTAS")
		for _, c := range cs {
			var q []string
			for r, n := range c.Quotas {
				q = append(q, fmt.Sprintf("%s=%d", r, n))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.StartsAt, c.EndsAt, strings.Join(q, ","))
		}
	})
}

func (c *workerCmd) campaigns(args []string) error {
	if err := c.parse(c.flags("campaigns"), args); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	cs, err := c.replica.Campaigns(c.ctx)
	if err != nil {
		return err
	}
	out := []campaignJSON{}
	for _, k := range cs {
		start, end := k.Window()
		quotas := map[string]int{}
		q, _ := syncengine.DecodeQuotas(k.Quotas.Value)
		for r, n := range q {
			quotas[roleName(r)] = int(n)
		}
		out = append(out, campaignJSON{k.ID, k.NodeID.Value, k.Name.Value, start.Format(time.RFC3339), end.Format(time.RFC3339), quotas, false})
	}
	return printCampaigns(c.out, out)
}

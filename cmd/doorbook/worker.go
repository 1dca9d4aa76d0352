package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

const workerUsage = `Usage: doorbook worker --replica FILE [--json] [--ca FILE] [--snapshot] VERB [flags]

Verbs (all work offline except enroll and sync):
  enroll    --server URL --code CODE [--name DEVICE]   enrol this replica
  grids                                                 your grids
  households [--category CODE]                          households of your grids
  household --id ID                                     one household: fields, persons, tags, visits
  register  [--grid ID] [--head NAME] [--address A] [--phone P] [--set FIELD=VALUE]...
  edit      --household ID --set FIELD=VALUE...         edit household fields
  delete    --household ID                              mark a household deleted
  person add  --household ID [--name N] [--set FIELD=VALUE]...
  person edit --id ID --set FIELD=VALUE...
  tag add|remove (--household ID | --person ID) --category CODE
  visit     --household ID [--household ID]... --form in_person|phone|talk|meeting|qa --notes TEXT [--at TIME]
            [--material open_letter|safety_calendar|pledge_form]... [--finding KIND[:NOTE]]...
            [--revisit REASON]... [--revisit-due TIME] [--campaign ID --answer QUESTION=VALUE...]
  visit amend --visit ID --reason TEXT [--notes TEXT] [--form FORM] [--at TIME]
  visit void  --visit ID --reason TEXT
  item      --visit ID [--finding N] --to assigned|resolved [--note TEXT] [--unit U --deadline TIME [--co-unit U]...]
            (closing an item off, 销号, is an admin's)
  items                                                 tracked items (hazards, disputes) of your households
  attach    --visit ID --file FILE [--name N] [--type MIME]
            keep a photo or scan with one of your visits (sync uploads it after the visit)
  attachments --visit ID [--fetch]                      a visit's files; --fetch downloads others' (online)
  due       [--campaign ID] [--limit N]                 what to visit next, most urgent first
  progress  [--campaign ID]                             your quota and your grids' coverage
  categories                                            must-visit categories
  campaigns                                             campaigns of your grids
  sync                                                  push local changes, pull the server's
  status                                                cursor, pending changes, last sync

Household fields: ` + "grid_id (admins only), head_name, address, phone_mobile, phone_landline, responsible_worker, responsible_leader, responsible_unit, member_count, housing_type, notes" + `
Person fields: name, id_number, gender, birth_date, phone, relation, notes
KIND: dispute, petition_backlog, hazard, hardship, help_request (hazards and disputes are tracked).
REASON: special_difficulty, important_request, unstable_mood, strong_complaint (opens a follow-up, due in 7 days by default).
--campaign defaults to the campaign running now.
TIME is RFC 3339 (2026-11-22T10:00:00+08:00) or a date (2026-11-22).
`

// workerCmd is one invocation of a worker verb.
type workerCmd struct {
	ctx context.Context
	// replica is opened by ready, once the verb's flags are known good.
	replica *sdk.Replica
	path    string
	opts    []sdk.Option
	out     output
	stderr  io.Writer
	json    *bool
}

// ready opens the replica the verb works on. It must exist: a mistyped
// path must not become a new, empty replica (only enroll creates one).
func (c *workerCmd) ready() error {
	if c.replica != nil {
		return nil
	}
	r, err := sdk.OpenExisting(c.ctx, c.path, c.opts...)
	if errors.Is(err, sdk.ErrNoReplica) {
		return fmt.Errorf("%w: enrol one first: doorbook worker --replica %s enroll --server URL --code CODE", err, c.path)
	}
	if err != nil {
		return err
	}
	c.replica = r
	return nil
}

func worker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("worker", stderr)
	path := fs.String("replica", "", "replica `file` (enroll creates it)")
	timeouts := timeoutFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	caFile := fs.String("ca", "", "also trust the CA certificates of this PEM `file` for an HTTPS server")
	snapshot := fs.Bool("snapshot", false, "on a new replica's first sync, fetch the whole scope as one SQLite file whatever its size (by default only from 2,000 households)")
	rows := fs.Bool("rows", false, "on a new replica's first sync, fetch the scope as pages of rows whatever its size")
	rest, err := parseVerb(fs, args, workerUsage, stderr)
	if err != nil || rest == nil {
		return err
	}
	if err := required("replica", *path); err != nil {
		return err
	}
	hc, err := httpClient(*caFile, *timeouts)
	if err != nil {
		return err
	}
	if *snapshot && *rows {
		return fmt.Errorf("%w: --snapshot and --rows: choose one", errUsage)
	}
	opts := []sdk.Option{sdk.WithHTTPClient(hc), sdk.WithTimeouts(*timeouts), sdk.WithAppVersion(cliVersion())}
	switch {
	case *snapshot:
		opts = append(opts, sdk.WithSnapshotBootstrap())
	case *rows:
		opts = append(opts, sdk.WithRowBootstrap())
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) && !*asJSON {
		opts = append(opts, sdk.WithProgress(progressBar(stderr)))
	}
	verb, vargs := rest[0], rest[1:]
	c := &workerCmd{ctx: ctx, path: *path, opts: opts, out: output{json: *asJSON, w: stdout}, stderr: stderr, json: asJSON}
	defer func() {
		if c.replica != nil {
			c.replica.Close()
		}
	}()
	switch verb {
	case "enroll":
		return c.enrollNew(vargs)
	case "grids":
		return c.grids(vargs)
	case "households":
		return c.households(vargs)
	case "household":
		return c.household(vargs)
	case "register":
		return c.register(vargs)
	case "edit":
		return c.edit(vargs)
	case "delete":
		return c.delete(vargs)
	case "person":
		return c.person(vargs)
	case "tag":
		return c.tag(vargs)
	case "visit":
		return c.visit(vargs)
	case "item":
		return c.item(vargs)
	case "items":
		return c.items(vargs)
	case "due":
		return c.due(vargs)
	case "progress":
		return c.progress(vargs)
	case "categories":
		return c.categories(vargs)
	case "campaigns":
		return c.campaigns(vargs)
	case "attach":
		return c.attach(vargs)
	case "attachments":
		return c.attachments(vargs)
	case "sync":
		return c.sync(vargs)
	case "status":
		return c.status(vargs)
	}
	fmt.Fprint(stderr, workerUsage)
	return fmt.Errorf("%w: unknown worker verb %q", errUsage, verb)
}

// enrollNew enrols the replica, creating its file; a failed enrolment of a
// new file leaves nothing behind.
func (c *workerCmd) enrollNew(args []string) error {
	_, statErr := os.Stat(c.path)
	created := errors.Is(statErr, fs.ErrNotExist)
	r, err := sdk.Open(c.ctx, c.path, c.opts...)
	if err != nil {
		return err
	}
	c.replica = r
	err = c.enroll(args)
	if err != nil && created {
		c.replica = nil
		r.Close()
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			_ = os.Remove(c.path + suffix)
		}
	}
	return err
}

// flags makes a verb's flag set; every verb also takes --json.
func (c *workerCmd) flags(name string) *flag.FlagSet {
	fs := newFlags("worker "+name, c.stderr)
	fs.BoolVar(c.json, "json", *c.json, "print JSON")
	return fs
}

func (c *workerCmd) parse(fs *flag.FlagSet, args []string) error {
	err := parse(fs, args)
	c.out.json = *c.json
	return err
}

func (c *workerCmd) enroll(args []string) error {
	fs := c.flags("enroll")
	serverURL := fs.String("server", "", "server `URL`")
	code := fs.String("code", "", "enrolment `code` from an admin")
	host, _ := os.Hostname()
	name := fs.String("name", host, "device `name` shown to admins")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(required("server", *serverURL), required("code", *code)); err != nil {
		return err
	}
	if err := c.replica.Enroll(c.ctx, strings.TrimRight(*serverURL, "/"), *code, *name); err != nil {
		return err
	}
	st, err := c.replica.Status(c.ctx)
	if err != nil {
		return err
	}
	return c.out.print(statusJSON(st), func(w io.Writer) {
		fmt.Fprintf(w, "enrolled as device %s of %s (%d grids); run \"sync\" to fetch your households\n", st.DeviceID, st.WorkerName, len(st.Grids))
	})
}

func (c *workerCmd) grids(args []string) error {
	if err := c.parse(c.flags("grids"), args); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	gs, err := c.replica.Grids(c.ctx)
	if err != nil {
		return err
	}
	type gridJSON struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	out := []gridJSON{}
	for _, g := range gs {
		out = append(out, gridJSON{g.ID, g.Name})
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "GRID\tNAME")
		for _, g := range gs {
			fmt.Fprintf(w, "%s\t%s\n", g.ID, g.Name)
		}
	})
}

type summaryJSON struct {
	ID          string   `json:"id"`
	GridID      string   `json:"grid_id"`
	HeadName    string   `json:"head_name"`
	Address     string   `json:"address"`
	MemberCount int64    `json:"member_count"`
	Categories  []string `json:"categories"`
	Visits      int      `json:"visits"`
	LastVisit   string   `json:"last_visit,omitempty"`
}

func (c *workerCmd) households(args []string) error {
	fs := c.flags("households")
	category := fs.String("category", "", "only households with this must-visit category `code`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	var hs []sdk.HouseholdSummary
	var err error
	if err := c.ready(); err != nil {
		return err
	}
	if *category != "" {
		hs, err = c.replica.CategoryMembers(c.ctx, *category)
	} else {
		hs, err = c.replica.Households(c.ctx)
	}
	if err != nil {
		return err
	}
	out := []summaryJSON{}
	for _, h := range hs {
		s := summaryJSON{ID: h.ID, GridID: h.GridID, HeadName: h.HeadName, Address: h.Address, MemberCount: h.MemberCount, Categories: h.Categories, Visits: h.Visits}
		if s.Categories == nil {
			s.Categories = []string{}
		}
		if !h.LastVisit.IsZero() {
			s.LastVisit = h.LastVisit.Format(time.RFC3339)
		}
		out = append(out, s)
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tHEAD\tADDRESS\tMEMBERS\tCATEGORIES\tVISITS\tLAST VISIT")
		for _, s := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", s.ID, s.HeadName, s.Address, s.MemberCount, strings.Join(s.Categories, ","), s.Visits, s.LastVisit)
		}
		fmt.Fprintf(w, "%d households\n", len(out))
	})
}

type visitJSON struct {
	ID         string   `json:"id"`
	Households []string `json:"household_ids"`
	VisitorID  string   `json:"visitor_id"`
	VisitedAt  string   `json:"visited_at"`
	Form       string   `json:"form"`
	Notes      string   `json:"notes"`
	Voided     bool     `json:"voided"`
	VoidReason string   `json:"void_reason,omitempty"`
	Amendments int      `json:"amendments"`
}

type householdJSON struct {
	ID         string              `json:"id"`
	Fields     map[string]string   `json:"fields"`
	Persons    []map[string]string `json:"persons"`
	Categories []string            `json:"categories"`
	Visits     []visitJSON         `json:"visits"`
}

func (c *workerCmd) household(args []string) error {
	fs := c.flags("household")
	id := fs.String("id", "", "household `id`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("id", *id); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	d, err := c.replica.Household(c.ctx, *id)
	if err != nil {
		return err
	}
	out := householdJSON{ID: d.Household.ID, Fields: map[string]string{}, Persons: []map[string]string{}, Categories: d.Categories, Visits: []visitJSON{}}
	if out.Categories == nil {
		out.Categories = []string{}
	}
	for _, name := range syncengine.HouseholdFieldNames() {
		out.Fields[name], _ = d.Household.Field(name)
	}
	for _, p := range d.Persons {
		m := map[string]string{"id": p.ID}
		for _, name := range syncengine.PersonFieldNames() {
			m[name], _ = p.Field(name)
		}
		out.Persons = append(out.Persons, m)
	}
	for _, v := range d.Visits {
		out.Visits = append(out.Visits, visitJSON{
			ID: v.ID, Households: v.HouseholdIDs, VisitorID: v.VisitorID, VisitedAt: v.VisitedAt.Format(time.RFC3339),
			Form: v.Form.String(), Notes: v.Notes, Voided: v.Voided, VoidReason: v.VoidReason, Amendments: len(v.Amendments),
		})
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "household\t%s\n", out.ID)
		for _, name := range syncengine.HouseholdFieldNames() {
			fmt.Fprintf(w, "%s\t%s\n", name, out.Fields[name])
		}
		fmt.Fprintf(w, "categories\t%s\n", strings.Join(out.Categories, ", "))
		fmt.Fprintf(w, "\nPERSONS\t\n")
		for _, p := range out.Persons {
			fmt.Fprintf(w, "%s\t%s %s %s %s\n", p["id"], p["name"], p["relation"], p["gender"], p["birth_date"])
		}
		fmt.Fprintf(w, "\nVISITS\t\n")
		for _, v := range out.Visits {
			state := ""
			if v.Voided {
				state = " [void: " + v.VoidReason + "]"
			} else if v.Amendments > 0 {
				state = " [amended]"
			}
			fmt.Fprintf(w, "%s\t%s %s %s%s\n", v.ID, v.VisitedAt, v.Form, v.Notes, state)
		}
	})
}

// done prints the id a write produced.
func (c *workerCmd) done(what, id string) error {
	return c.out.print(map[string]string{"id": id}, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s (offline; run sync to send)\n", what, id)
	})
}

func (c *workerCmd) register(args []string) error {
	fs := c.flags("register")
	grid := fs.String("grid", "", "grid `id` (default: your only grid)")
	head := fs.String("head", "", "head of household's `name`")
	address := fs.String("address", "", "`address`")
	phone := fs.String("phone", "", "mobile `phone`")
	var set multi
	fs.Var(&set, "set", "`FIELD=VALUE` (repeatable)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	fields, err := keyValues(set)
	if err != nil {
		return err
	}
	for k, v := range map[string]string{"head_name": *head, "address": *address, "phone_mobile": *phone} {
		if v != "" {
			fields[k] = v
		}
	}
	if err := c.ready(); err != nil {
		return err
	}
	if *grid == "" {
		gs, err := c.replica.Grids(c.ctx)
		if err != nil {
			return err
		}
		if len(gs) != 1 {
			return fmt.Errorf("%w: you have %d grids: say which with --grid", errUsage, len(gs))
		}
		*grid = gs[0].ID
	}
	id, err := c.replica.RegisterHousehold(c.ctx, *grid, fields)
	if err != nil {
		return err
	}
	return c.done("registered household", id)
}

func (c *workerCmd) edit(args []string) error {
	fs := c.flags("edit")
	id := fs.String("household", "", "household `id`")
	var set multi
	fs.Var(&set, "set", "`FIELD=VALUE` (repeatable)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	fields, err := keyValues(set)
	if err != nil {
		return err
	}
	if err := required("household", *id); err != nil {
		return err
	}
	if len(fields) == 0 {
		return fmt.Errorf("%w: nothing to edit: give --set FIELD=VALUE", errUsage)
	}
	if err := c.ready(); err != nil {
		return err
	}
	if err := c.replica.EditHousehold(c.ctx, *id, fields); err != nil {
		return err
	}
	return c.done("edited household", *id)
}

func (c *workerCmd) delete(args []string) error {
	fs := c.flags("delete")
	id := fs.String("household", "", "household `id`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("household", *id); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	if err := c.replica.DeleteHousehold(c.ctx, *id); err != nil {
		return err
	}
	return c.done("deleted household", *id)
}

func (c *workerCmd) person(args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "edit") {
		return fmt.Errorf("%w: person add|edit", errUsage)
	}
	fs := c.flags("person " + args[0])
	household := fs.String("household", "", "household `id` (add)")
	id := fs.String("id", "", "person `id` (edit)")
	name := fs.String("name", "", "person's `name`")
	var set multi
	fs.Var(&set, "set", "`FIELD=VALUE` (repeatable)")
	if err := c.parse(fs, args[1:]); err != nil {
		return err
	}
	fields, err := keyValues(set)
	if err != nil {
		return err
	}
	if *name != "" {
		fields["name"] = *name
	}
	if err := c.ready(); err != nil {
		return err
	}
	if args[0] == "add" {
		if err := required("household", *household); err != nil {
			return err
		}
		pid, err := c.replica.AddPerson(c.ctx, *household, fields)
		if err != nil {
			return err
		}
		return c.done("added person", pid)
	}
	if err := required("id", *id); err != nil {
		return err
	}
	if err := c.replica.EditPerson(c.ctx, *id, fields); err != nil {
		return err
	}
	return c.done("edited person", *id)
}

func (c *workerCmd) tag(args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return fmt.Errorf("%w: tag add|remove (--household ID | --person ID) --category CODE", errUsage)
	}
	fs := c.flags("tag " + args[0])
	household := fs.String("household", "", "household `id`")
	person := fs.String("person", "", "person `id`: the category is on the person (the household counts it)")
	category := fs.String("category", "", "must-visit category `code`")
	if err := c.parse(fs, args[1:]); err != nil {
		return err
	}
	if (*household == "") == (*person == "") {
		return fmt.Errorf("%w: tag %s needs --household or --person, one of them", errUsage, args[0])
	}
	if err := required("category", *category); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	var err error
	switch {
	case args[0] == "add" && *person != "":
		err = c.replica.AddPersonTag(c.ctx, *person, *category)
	case args[0] == "add":
		err = c.replica.AddTag(c.ctx, *household, *category)
	case *person != "":
		err = c.replica.RemovePersonTag(c.ctx, *person, *category)
	default:
		err = c.replica.RemoveTag(c.ctx, *household, *category)
	}
	if err != nil {
		return err
	}
	if *person != "" {
		return c.done("tag "+args[0]+" "+*category+" on person", *person)
	}
	return c.done("tag "+args[0]+" "+*category+" on household", *household)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: time %q is not RFC 3339 or YYYY-MM-DD", errUsage, s)
}

func (c *workerCmd) visit(args []string) error {
	if len(args) > 0 && (args[0] == "amend" || args[0] == "void") {
		return c.amend(args[0], args[1:])
	}
	fs := c.flags("visit")
	var households multi
	fs.Var(&households, "household", "household `id` (repeat for a group visit)")
	form := fs.String("form", "in_person", "visit `form`: in_person, phone, talk, meeting, qa")
	notes := fs.String("notes", "", "what was found (民情日记)")
	at := fs.String("at", "", "when (default now)")
	position := fs.String("position", "", "where the phone was: `LAT,LNG[,ACCURACY_M]` (WGS 84 degrees; fixed now)")
	var details visitDetails
	details.flags(fs)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if len(households) == 0 {
		return fmt.Errorf("%w: --household is required", errUsage)
	}
	fix, err := parsePosition(*position)
	if err != nil {
		return err
	}
	f, err := syncengine.ParseVisitForm(*form)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	when, err := parseTime(*at)
	if err != nil {
		return err
	}
	in := sdk.VisitInput{HouseholdIDs: households, Form: f, Notes: *notes, VisitedAt: when, Position: fix}
	if err := c.ready(); err != nil {
		return err
	}
	if err := details.fill(c.ctx, c.replica, &in); err != nil {
		return err
	}
	id, err := c.replica.RecordVisit(c.ctx, in)
	if err != nil {
		return err
	}
	return c.done("recorded visit", id)
}

// parsePosition reads --position: "LAT,LNG" or "LAT,LNG,ACCURACY_M", fixed
// now (nil for ""). Whether it lies on the globe is the SDK's to say.
func parsePosition(s string) (*syncengine.Position, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("%w: --position %q: want LAT,LNG or LAT,LNG,ACCURACY_M", errUsage, s)
	}
	var xs [3]float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: --position %q: %q is not a number", errUsage, s, p)
		}
		xs[i] = x
	}
	return &syncengine.Position{Latitude: xs[0], Longitude: xs[1], AccuracyMeters: xs[2], FixedAt: time.Now()}, nil
}

func (c *workerCmd) amend(kind string, args []string) error {
	fs := c.flags("visit " + kind)
	visit := fs.String("visit", "", "visit `id`")
	reason := fs.String("reason", "", "why (required: the register is evidence)")
	notes := fs.String("notes", "", "corrected notes")
	form := fs.String("form", "", "corrected `form`")
	at := fs.String("at", "", "corrected time")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(required("visit", *visit), required("reason", *reason)); err != nil {
		return err
	}
	var id string
	var err error
	if err := c.ready(); err != nil {
		return err
	}
	if kind == "void" {
		id, err = c.replica.VoidVisit(c.ctx, *visit, *reason)
	} else {
		var corr sdk.Correction
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "notes" {
				corr.Notes = notes
			}
		})
		if *form != "" {
			if corr.Form, err = syncengine.ParseVisitForm(*form); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		if corr.VisitedAt, err = parseTime(*at); err != nil {
			return err
		}
		if corr.Notes == nil && corr.Form == 0 && corr.VisitedAt.IsZero() {
			return fmt.Errorf("%w: nothing to correct: give --notes, --form or --at", errUsage)
		}
		id, err = c.replica.AmendVisit(c.ctx, *visit, *reason, corr)
	}
	if err != nil {
		return err
	}
	return c.done("visit "+kind, id)
}

func (c *workerCmd) sync(args []string) error {
	if err := c.parse(c.flags("sync"), args); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	rep, err := c.replica.Sync(c.ctx)
	if err != nil {
		return err
	}
	out := map[string]any{
		"pushed": rep.Pushed, "duplicates": rep.Duplicates, "pulled": rep.Pulled,
		"bootstrapped_households": rep.Bootstrapped, "evicted": rep.Evicted, "restamped": rep.Restamped, "cursor": rep.Cursor,
		"rejected": rep.Rejected, "reset": rep.Reset,
		"files_uploaded": rep.Attachments.Uploaded, "files_pending": rep.Attachments.Pending,
		"files_refused": rep.Attachments.Refused, "file_bytes_sent": rep.Attachments.Bytes,
	}
	if rep.Attachments.Err != nil {
		out["files_error"] = rep.Attachments.Err.Error()
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "synced: pushed %d, pulled %d rows, %d households received whole, %d left your scope (cursor %d)\n",
			rep.Pushed, rep.Pulled, rep.Bootstrapped, rep.Evicted, rep.Cursor)
		if rep.Rejected > 0 {
			fmt.Fprintf(w, "the server refused %d changes for good: set aside, see \"status\"\n", rep.Rejected)
		}
		if rep.Restamped > 0 {
			fmt.Fprintf(w, "this phone's clock runs ahead of the server's: %d unsent changes were re-stamped\n", rep.Restamped)
		}
		if a := rep.Attachments; a.Uploaded+a.Pending+a.Refused > 0 || a.Err != nil {
			fmt.Fprintf(w, "files: %d uploaded (%s sent), %d to go, %d refused\n", a.Uploaded, sizeText(a.Bytes), a.Pending, a.Refused)
		}
		if err := rep.Attachments.Err; err != nil {
			fmt.Fprintf(w, "the files' upload stopped: %v; the next sync goes on from what the server holds\n", err)
		}
	})
}

func statusJSON(st sdk.Status) map[string]any {
	grids := []string{}
	for _, g := range st.Grids {
		grids = append(grids, g.ID)
	}
	m := map[string]any{
		"replica_id": st.ReplicaID, "enrolled": st.Enrolled, "server": st.ServerURL, "device_id": st.DeviceID,
		"worker_id": st.WorkerID, "worker_name": st.WorkerName, "grid_ids": grids, "cursor": st.Cursor,
		"pending_changes": st.Pending, "households": st.Households, "bootstrapping": st.Bootstrapping,
		"last_error": st.LastError, "schema_version": st.SchemaVersion, "clock_offset_ms": st.ClockOffset.Milliseconds(),
		"rejected_changes": st.Rejected,
	}
	if !st.LastSync.IsZero() {
		m["last_sync"] = st.LastSync.Format(time.RFC3339)
	} else {
		m["last_sync"] = nil
	}
	if st.Revoked != nil {
		m["revoked"] = map[string]string{"at": st.Revoked.At.Format(time.RFC3339), "reason": st.Revoked.Reason}
	}
	if st.Locked != nil {
		m["locked"] = st.Locked.Error()
	}
	return m
}

func (c *workerCmd) status(args []string) error {
	if err := c.parse(c.flags("status"), args); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	st, err := c.replica.Status(c.ctx)
	if err != nil {
		return err
	}
	return c.out.print(statusJSON(st), func(w io.Writer) {
		if st.Revoked != nil {
			fmt.Fprintf(w, "replica\t%s (revoked)\n", st.ReplicaID)
			fmt.Fprintf(w, "revoked\t%s\n", st.Revoked)
			return
		}
		if !st.Enrolled {
			fmt.Fprintf(w, "replica\t%s (not enrolled)\n", st.ReplicaID)
			return
		}
		last := "never"
		if !st.LastSync.IsZero() {
			last = st.LastSync.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "worker\t%s (%s)\n", st.WorkerName, st.WorkerID)
		fmt.Fprintf(w, "server\t%s (device %s)\n", st.ServerURL, st.DeviceID)
		fmt.Fprintf(w, "grids\t%d\n", len(st.Grids))
		fmt.Fprintf(w, "households\t%d\n", st.Households)
		fmt.Fprintf(w, "pending changes\t%d\n", st.Pending)
		fmt.Fprintf(w, "cursor\t%d\n", st.Cursor)
		fmt.Fprintf(w, "last sync\t%s\n", last)
		if st.Locked != nil {
			fmt.Fprintf(w, "locked\t%s\n", st.Locked)
		}
		if st.Bootstrapping {
			fmt.Fprintf(w, "bootstrap\tnot finished: sync again\n")
		}
		if st.LastError != "" {
			fmt.Fprintf(w, "last error\t%s\n", st.LastError)
		}
		if st.Rejected > 0 {
			fmt.Fprintf(w, "refused by server\t%d changes, set aside (they could not be applied)\n", st.Rejected)
		}
	})
}

// progressBar draws sync progress on a terminal.
func progressBar(w io.Writer) func(sdk.Progress) {
	return func(p sdk.Progress) {
		if p.Total > 0 {
			const width = 30
			filled := min(width, p.Done*width/p.Total)
			fmt.Fprintf(w, "\r%-9s [%s%s] %d/%d", p.Phase, strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total)
		} else {
			fmt.Fprintf(w, "\r%-9s %d", p.Phase, p.Done)
		}
		if p.Total > 0 && p.Done >= p.Total {
			fmt.Fprintln(w)
		}
	}
}

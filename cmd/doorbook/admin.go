package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

const adminUsage = `Usage: doorbook admin (--server URL --token TOKEN | --credentials FILE) [--json] VERB [flags]
       doorbook admin passwd --db FILE|URL --name NAME [--password-file FILE] [--json]
         sets an admin's password for the web console, on the database itself (no token);
         without --password-file it makes one up and prints it

Verbs:
  org create  --level district|street|community|grid --name NAME [--parent ID]
  org list
  worker create --name NAME [--role ROLE] [--grid ID]...
  worker list
  worker grids  --worker ID [--grid ID]...     replace a worker's grids
  code   --worker ID [--ttl 72h]               a one-time enrolment code
  move   --household ID --grid ID              move a household to another grid
  erase  (--household ID | --person ID) --reason TEXT   erase personal data on request (audited; phones follow at their next sync)
  category load                                the five must-visits (五必访) and sub-groups, if not defined
  category set  --code CODE [--zh NAME] [--en NAME] [--parent CODE] [--every DAYS] [--key-group=BOOL] [--deleted]
  category list
  campaign create --node ID --name NAME --from DATE --until DATE [--quota ROLE=N]... [--survey]
                  [--question CODE:SCALE:POSITIVE_FROM:TEXT]...
  campaign set  --id ID [the flags of create]  change a campaign (quotas and questions are replaced whole)
  campaign list
  campaign ranking --id ID [--weight METRIC=N]... [--reward FROM-TO=COMMUNITY/CADRE]...
                  how communities rank (通报): weights of coverage, key_group and questions' positive rates
                  (none: by coverage); yuan by rank, negative a fine (seed 000: --reward 1-7=3000/300 ...
                  --reward 61-=-3000/-300)
  item   --visit ID [--finding N] --to assigned|resolved|closed [--unit U --deadline DATE [--co-unit U]...] [--note TEXT]
  item policy [--escalation-days N]            after how many days an overdue item goes up a level (shown, or set
                                               by installation-wide admins; default 7)
  report --campaign ID [--node ID] [--at TIME] [--weekly]   progress, communities ranked, quotas, survey;
                                               --at: as of TIME (what was done before it); --weekly: each week
  report households --campaign ID --metric METRIC [--node ID] [--limit N] [--offset N]
  export --campaign ID [--node ID] --kind ledger|visits|progress|items|all --format csv|xlsx [--lang zh|en] --out FILE
  zero   --node ID --from DATE --until DATE [--note TEXT]   a grid's or community's zero report (零报告):
                                               nothing found in the period
  report reporting [--node ID] --from DATE --until DATE   what each community and grid reported: items
                                               found, zero reports, and which are silent
  audit  [--limit N]                           who read which report or export
  device list   [--worker ID] [--silent DAYS]  enrolled phones, revoked ones too: last sync, version, what waited;
                                               --silent: only those that have not synced for DAYS days
  device revoke --device ID [--reason TEXT]    a lost phone: refused at its next request, which wipes it
  device policy [--lock-days N --wipe-days N]  the lost-phone policy: shown, or set (installation-wide admins)
  admin create  --name NAME [--node ID] [--leader]   another admin, or a leader who may only read
  attachment list --visit ID [--visit ID]...   the files (photos, scans) of visits
  attachment get  --sha256 HASH --out FILE     download one, checked against its hash (audited)
  import --node ID --file FILE [--dry-run] [--all]   an office's ledger (.xlsx or .csv, the ledger export's
                                               columns in zh or en): households, persons and categories into
                                               the node's grids; --dry-run says what each row would do

METRIC: not_visited, visited, key_group_not_visited, must_visit_overdue, revisits_open, revisits_overdue,
items_open, items_overdue, members_mismatch. --until is the campaign's last day. --survey adds the standard questions
(aware 1–2, satisfied 1–5, safe 1–5).

ROLE: grid_worker, community_worker, cadre, police_officer, leader, teacher, district_leader, department_leader
(a campaign's quota is per role: seed 002's district leaders 30, department and town leaders 50, cadres 80).
--credentials reads the server and admin token from the file "doorbook serve" writes.
`

// maxCodeTTL is the longest an enrolment code may stay valid; the server
// enforces the same bound.
const maxCodeTTL = 90 * 24 * time.Hour

type adminCmd struct {
	ctx         context.Context
	client      doorbookv1connect.AdminServiceClient
	reports     doorbookv1connect.ReportServiceClient
	attachments doorbookv1connect.AttachmentServiceClient
	ledger      doorbookv1connect.LedgerServiceClient
	out         output
	stderr      io.Writer
	json        *bool
}

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "passwd" {
		return adminPasswd(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("admin", stderr)
	serverURL := fs.String("server", "", "server `URL`")
	token := fs.String("token", "", "admin `token`")
	credsPath := fs.String("credentials", "", "credentials `file` written by doorbook serve")
	asJSON := fs.Bool("json", false, "print JSON")
	caFile := fs.String("ca", "", "also trust the CA certificates of this PEM `file` for an HTTPS server")
	timeouts := timeoutFlags(fs)
	rest, err := parseVerb(fs, args, adminUsage, stderr)
	if err != nil || rest == nil {
		return err
	}
	if *credsPath != "" {
		c, err := readCredentials(*credsPath)
		if err != nil {
			return err
		}
		if *serverURL == "" {
			*serverURL = c.Server
		}
		if *token == "" {
			*token = c.AdminToken
		}
	}
	if err := errors.Join(required("server", *serverURL), required("token", *token)); err != nil {
		return err
	}
	hc, err := httpClient(*caFile, *timeouts)
	if err != nil {
		return err
	}
	base, auth := strings.TrimRight(*serverURL, "/"), connect.WithInterceptors(bearer.Token(*token))
	c := &adminCmd{
		ctx:         ctx,
		client:      doorbookv1connect.NewAdminServiceClient(hc, base, auth),
		reports:     doorbookv1connect.NewReportServiceClient(hc, base, auth),
		attachments: doorbookv1connect.NewAttachmentServiceClient(hc, base, auth, connect.WithReadMaxBytes(syncengine.AttachmentChunk+64<<10)),
		// A ledger is text that gzip shrinks to a fifth.
		ledger: doorbookv1connect.NewLedgerServiceClient(hc, base, auth, connect.WithSendGzip()),
		out:    output{json: *asJSON, w: stdout},
		stderr: stderr,
		json:   asJSON,
	}
	verb, vargs := rest[0], rest[1:]
	sub := ""
	if len(vargs) > 0 && !strings.HasPrefix(vargs[0], "-") {
		sub, vargs = vargs[0], vargs[1:]
	}
	switch verb + " " + sub {
	case "org create":
		return c.orgCreate(vargs)
	case "org list":
		return c.orgList(vargs)
	case "worker create":
		return c.workerCreate(vargs)
	case "worker list":
		return c.workerList(vargs)
	case "worker grids":
		return c.workerGrids(vargs)
	case "code ":
		return c.code(vargs)
	case "move ":
		return c.move(vargs)
	case "erase ":
		return c.erase(vargs)
	case "category load":
		return c.categoryLoad(vargs)
	case "category set":
		return c.categorySet(vargs)
	case "category list":
		return c.categoryList(vargs)
	case "campaign create":
		return c.campaignPut(vargs, true)
	case "campaign set":
		return c.campaignPut(vargs, false)
	case "campaign list":
		return c.campaignList(vargs)
	case "campaign ranking":
		return c.campaignRanking(vargs)
	case "item ":
		return c.item(vargs)
	case "item policy":
		return c.itemPolicy(vargs)
	case "report ":
		return c.report(vargs)
	case "report households":
		return c.reportHouseholds(vargs)
	case "export ":
		return c.export(vargs)
	case "audit ":
		return c.audit(vargs)
	case "device list":
		return c.deviceList(vargs)
	case "device revoke":
		return c.deviceRevoke(vargs)
	case "device policy":
		return c.devicePolicy(vargs)
	case "admin create":
		return c.adminCreate(vargs)
	case "zero ":
		return c.zeroReport(vargs)
	case "report reporting":
		return c.reporting(vargs)
	case "attachment list":
		return c.attachmentList(vargs)
	case "attachment get":
		return c.attachmentGet(vargs)
	case "import ":
		return c.importLedger(vargs)
	}
	fmt.Fprint(stderr, adminUsage)
	return fmt.Errorf("%w: unknown admin verb %q", errUsage, strings.TrimSpace(verb+" "+sub))
}

func (c *adminCmd) flags(name string) *flag.FlagSet {
	fs := newFlags("admin "+name, c.stderr)
	fs.BoolVar(c.json, "json", *c.json, "print JSON")
	return fs
}

func (c *adminCmd) parse(fs *flag.FlagSet, args []string) error {
	err := parse(fs, args)
	c.out.json = *c.json
	return err
}

// enumValue finds NAME in a protobuf enum whose values are PREFIX_NAME.
func enumValue(values map[string]int32, prefix, name string) (int32, error) {
	v, ok := values[prefix+strings.ToUpper(name)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("%w: unknown value %q", errUsage, name)
	}
	return v, nil
}

func enumName(names map[int32]string, prefix string, v int32) string {
	return strings.ToLower(strings.TrimPrefix(names[v], prefix))
}

type nodeJSON struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id"`
	Level    string `json:"level"`
	Name     string `json:"name"`
}

func nodeOut(n *pb.OrgNode) nodeJSON {
	return nodeJSON{n.GetId(), n.GetParentId(), enumName(pb.OrgLevel_name, "ORG_LEVEL_", int32(n.GetLevel())), n.GetName()}
}

func (c *adminCmd) orgCreate(args []string) error {
	fs := c.flags("org create")
	parent := fs.String("parent", "", "parent node `id` (none for a district)")
	level := fs.String("level", "", "district, street, community or grid")
	name := fs.String("name", "", "node `name`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	lv, err := enumValue(pb.OrgLevel_value, "ORG_LEVEL_", *level)
	if err != nil {
		return err
	}
	res, err := c.client.CreateOrgNode(c.ctx, &pb.CreateOrgNodeRequest{ParentId: *parent, Level: pb.OrgLevel(lv), Name: *name})
	if err != nil {
		return err
	}
	n := nodeOut(res.GetNode())
	return c.out.print(n, func(w io.Writer) { fmt.Fprintf(w, "created %s %s\t%s\n", n.Level, n.ID, n.Name) })
}

func (c *adminCmd) orgList(args []string) error {
	if err := c.parse(c.flags("org list"), args); err != nil {
		return err
	}
	res, err := c.client.ListOrgNodes(c.ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		return err
	}
	out := []nodeJSON{}
	for _, n := range res.GetNodes() {
		out = append(out, nodeOut(n))
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "LEVEL\tID\tPARENT\tNAME")
		for _, n := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.Level, n.ID, n.ParentID, n.Name)
		}
	})
}

type workerJSON struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	GridIDs []string `json:"grid_ids"`
}

func workerOut(w *pb.Worker) workerJSON {
	grids := w.GetGridIds()
	if grids == nil {
		grids = []string{}
	}
	return workerJSON{w.GetId(), w.GetName(), enumName(pb.WorkerRole_name, "WORKER_ROLE_", int32(w.GetRole())), grids}
}

func (c *adminCmd) printWorker(w workerJSON, verb string) error {
	return c.out.print(w, func(out io.Writer) {
		fmt.Fprintf(out, "%s worker %s\t%s (%s), grids %s\n", verb, w.ID, w.Name, w.Role, strings.Join(w.GridIDs, ", "))
	})
}

func (c *adminCmd) workerCreate(args []string) error {
	fs := c.flags("worker create")
	name := fs.String("name", "", "worker's `name`")
	role := fs.String("role", "grid_worker", "`role`")
	var grids multi
	fs.Var(&grids, "grid", "grid `id` (repeatable)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	rv, err := enumValue(pb.WorkerRole_value, "WORKER_ROLE_", *role)
	if err != nil {
		return err
	}
	res, err := c.client.CreateWorker(c.ctx, &pb.CreateWorkerRequest{Name: *name, Role: pb.WorkerRole(rv), GridIds: grids})
	if err != nil {
		return err
	}
	return c.printWorker(workerOut(res.GetWorker()), "created")
}

func (c *adminCmd) workerList(args []string) error {
	if err := c.parse(c.flags("worker list"), args); err != nil {
		return err
	}
	res, err := c.client.ListWorkers(c.ctx, &pb.ListWorkersRequest{})
	if err != nil {
		return err
	}
	out := []workerJSON{}
	for _, w := range res.GetWorkers() {
		out = append(out, workerOut(w))
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tROLE\tGRIDS")
		for _, x := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", x.ID, x.Name, x.Role, strings.Join(x.GridIDs, ","))
		}
	})
}

func (c *adminCmd) workerGrids(args []string) error {
	fs := c.flags("worker grids")
	id := fs.String("worker", "", "worker `id`")
	var grids multi
	fs.Var(&grids, "grid", "grid `id` (repeatable; none takes every grid away)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("worker", *id); err != nil {
		return err
	}
	res, err := c.client.SetWorkerGrids(c.ctx, &pb.SetWorkerGridsRequest{WorkerId: *id, GridIds: grids})
	if err != nil {
		return err
	}
	return c.printWorker(workerOut(res.GetWorker()), "updated")
}

func (c *adminCmd) code(args []string) error {
	fs := c.flags("code")
	id := fs.String("worker", "", "worker `id`")
	ttl := fs.Duration("ttl", 72*time.Hour, "how long the code stays valid")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("worker", *id); err != nil {
		return err
	}
	if *ttl < time.Second || *ttl > maxCodeTTL {
		return fmt.Errorf("%w: --ttl must be between 1s and %s, got %s", errUsage, maxCodeTTL, *ttl)
	}
	res, err := c.client.CreateEnrollmentCode(c.ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: *id, TtlSeconds: uint32(ttl.Seconds())})
	if err != nil {
		return err
	}
	expires := time.Unix(int64(res.GetExpiresAtUnix()), 0)
	return c.out.print(map[string]any{"code": res.GetCode(), "expires_at": expires.UTC().Format(time.RFC3339)}, func(w io.Writer) {
		fmt.Fprintf(w, "enrolment code %s (single use, until %s)\n", res.GetCode(), expires.Local().Format(time.DateTime))
	})
}

func (c *adminCmd) erase(args []string) error {
	fs := c.flags("erase")
	household := fs.String("household", "", "household `id`: its fields, its persons', its visits' notes")
	person := fs.String("person", "", "person `id`")
	reason := fs.String("reason", "", "why: the request's reference, kept in the audit log")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if (*household == "") == (*person == "") {
		return fmt.Errorf("%w: give one of --household and --person", errUsage)
	}
	if err := required("reason", *reason); err != nil {
		return err
	}
	req := &pb.ErasePersonalDataRequest{Reason: *reason, Target: &pb.ErasePersonalDataRequest_HouseholdId{HouseholdId: *household}}
	if *person != "" {
		req.Target = &pb.ErasePersonalDataRequest_PersonId{PersonId: *person}
	}
	res, err := c.client.ErasePersonalData(c.ctx, req)
	if err != nil {
		return err
	}
	out := map[string]uint32{"households": res.GetHouseholds(), "persons": res.GetPersons(), "visits": res.GetVisits(), "amendments": res.GetAmendments(),
		"files": res.GetFiles()}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "erased: %d household, %d persons, notes of %d visits and %d amendments, %d files; phones follow at their next sync\n",
			res.GetHouseholds(), res.GetPersons(), res.GetVisits(), res.GetAmendments(), res.GetFiles())
	})
}

func (c *adminCmd) move(args []string) error {
	fs := c.flags("move")
	household := fs.String("household", "", "household `id`")
	grid := fs.String("grid", "", "destination grid `id`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(required("household", *household), required("grid", *grid)); err != nil {
		return err
	}
	res, err := c.client.MoveHousehold(c.ctx, &pb.MoveHouseholdRequest{HouseholdId: *household, GridId: *grid})
	if err != nil {
		return err
	}
	h := res.GetHousehold()
	return c.out.print(map[string]string{"id": h.GetId(), "grid_id": h.GetGridId().GetValue()}, func(w io.Writer) {
		fmt.Fprintf(w, "moved household %s to grid %s\n", h.GetId(), h.GetGridId().GetValue())
	})
}

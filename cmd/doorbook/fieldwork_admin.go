package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/doorbook/doorbook/fieldwork"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

func roleName(r int32) string { return enumName(pb.WorkerRole_name, "WORKER_ROLE_", r) }

func categoryOut(c *pb.Category) categoryJSON {
	return categoryJSON{c.GetCode(), c.GetNameZh().GetValue(), c.GetNameEn().GetValue(), c.GetParentCode().GetValue(),
		c.GetRevisitDays().GetValue(), c.GetKeyGroup().GetValue(), c.GetDeleted().GetValue()}
}

func (c *adminCmd) printCategories(cats []*pb.Category) error {
	out := []categoryJSON{}
	for _, k := range cats {
		out = append(out, categoryOut(k))
	}
	return printCategories(c.out, out)
}

func (c *adminCmd) categoryLoad(args []string) error {
	if err := c.parse(c.flags("category load"), args); err != nil {
		return err
	}
	res, err := c.client.LoadDefaultCategories(c.ctx, &pb.LoadDefaultCategoriesRequest{})
	if err != nil {
		return err
	}
	if !c.out.json {
		fmt.Fprintf(c.out.w, "added %d categories\n", res.GetAdded())
	}
	return c.printCategories(res.GetCategories())
}

func (c *adminCmd) categorySet(args []string) error {
	fs := c.flags("category set")
	code := fs.String("code", "", "category `code`")
	zh := fs.String("zh", "", "Chinese `name`")
	en := fs.String("en", "", "English `name`")
	parent := fs.String("parent", "", "the group's `code`, for a sub-group")
	every := fs.Int64("every", 0, "revisit interval in `days` (0: none)")
	key := fs.Bool("key-group", false, "a key group: needs a 100% visit rate")
	deleted := fs.Bool("deleted", false, "delete the category (--deleted=false restores it)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("code", *code); err != nil {
		return err
	}
	req := &pb.PutCategoryRequest{Code: *code}
	// Only the flags given change the category.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["zh"] {
		req.NameZh = zh
	}
	if set["en"] {
		req.NameEn = en
	}
	if set["parent"] {
		req.ParentCode = parent
	}
	if set["every"] {
		req.RevisitDays = every
	}
	if set["key-group"] {
		req.KeyGroup = key
	}
	if set["deleted"] {
		req.Deleted = deleted
	}
	res, err := c.client.PutCategory(c.ctx, req)
	if err != nil {
		return err
	}
	return c.printCategories([]*pb.Category{res.GetCategory()})
}

func (c *adminCmd) categoryList(args []string) error {
	if err := c.parse(c.flags("category list"), args); err != nil {
		return err
	}
	res, err := c.client.ListCategories(c.ctx, &pb.ListCategoriesRequest{})
	if err != nil {
		return err
	}
	return c.printCategories(res.GetCategories())
}

func (c *adminCmd) campaignPut(args []string, create bool) error {
	name := "campaign set"
	if create {
		name = "campaign create"
	}
	fs := c.flags(name)
	id := fs.String("id", "", "campaign `id`")
	node := fs.String("node", "", "org node `id` the campaign covers")
	title := fs.String("name", "", "campaign `name`")
	from := fs.String("from", "", "first `day`")
	until := fs.String("until", "", "last `day`")
	var quotas, questions multi
	fs.Var(&quotas, "quota", "households per person of a role: `ROLE=N` (repeat)")
	fs.Var(&questions, "question", "survey question `CODE:SCALE:POSITIVE_FROM:TEXT` (repeat)")
	survey := fs.Bool("survey", false, "add the standard questions (aware, satisfied, safe)")
	deleted := fs.Bool("deleted", false, "delete the campaign")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	req := &pb.PutCampaignRequest{Id: *id}
	if create {
		if err := errors.Join(required("node", *node), required("name", *title), required("from", *from), required("until", *until)); err != nil {
			return err
		}
		req.Id = ""
	} else if err := required("id", *id); err != nil {
		return err
	}
	if set["node"] {
		req.NodeId = node
	}
	if set["name"] {
		req.Name = title
	}
	if set["from"] {
		t, err := parseTime(*from)
		if err != nil {
			return err
		}
		req.StartsAt = timestamppb.New(t)
	}
	if set["until"] {
		t, err := parseTime(*until)
		if err != nil {
			return err
		}
		// The last day counts whole: the window ends at the next midnight.
		req.EndsAt = timestamppb.New(t.AddDate(0, 0, 1))
	}
	if set["quota"] {
		req.SetQuotas = true
		for _, q := range quotas {
			role, n, ok := strings.Cut(q, "=")
			count, err := strconv.ParseUint(n, 10, 32)
			if !ok || err != nil {
				return fmt.Errorf("%w: --quota %q: want ROLE=N", errUsage, q)
			}
			rv, err := enumValue(pb.WorkerRole_value, "WORKER_ROLE_", role)
			if err != nil {
				return err
			}
			req.Quotas = append(req.Quotas, &pb.Quota{Role: pb.WorkerRole(rv), Households: uint32(count)})
		}
	}
	if set["question"] || *survey {
		req.SetQuestionnaire = true
		if *survey {
			for _, q := range fieldwork.StandardSurvey {
				req.Questions = append(req.Questions, &pb.Question{Code: q.Code, TextZh: q.TextZH, TextEn: q.TextEN,
					Scale: uint32(q.Scale), PositiveFrom: uint32(q.PositiveFrom)})
			}
		}
		for _, q := range questions {
			parts := strings.SplitN(q, ":", 4)
			if len(parts) < 3 {
				return fmt.Errorf("%w: --question %q: want CODE:SCALE:POSITIVE_FROM:TEXT", errUsage, q)
			}
			scale, err1 := strconv.ParseUint(parts[1], 10, 32)
			pos, err2 := strconv.ParseUint(parts[2], 10, 32)
			if err := errors.Join(err1, err2); err != nil {
				return fmt.Errorf("%w: --question %q: %v", errUsage, q, err)
			}
			text := ""
			if len(parts) == 4 {
				text = parts[3]
			}
			req.Questions = append(req.Questions, &pb.Question{Code: parts[0], TextZh: text, Scale: uint32(scale), PositiveFrom: uint32(pos)})
		}
	}
	if set["deleted"] {
		req.Deleted = deleted
	}
	res, err := c.client.PutCampaign(c.ctx, req)
	if err != nil {
		return err
	}
	return printCampaigns(c.out, []campaignJSON{campaignOut(res.GetCampaign())})
}

func campaignOut(k *pb.Campaign) campaignJSON {
	quotas := map[string]int{}
	for _, q := range k.GetQuotas().GetQuotas() {
		quotas[roleName(int32(q.GetRole()))] = int(q.GetHouseholds())
	}
	return campaignJSON{k.GetId(), k.GetNodeId().GetValue(), k.GetName().GetValue(),
		time.UnixMilli(k.GetStartsAt().GetValue()).Format(time.RFC3339), time.UnixMilli(k.GetEndsAt().GetValue()).Format(time.RFC3339),
		quotas, k.GetDeleted().GetValue()}
}

func (c *adminCmd) campaignList(args []string) error {
	if err := c.parse(c.flags("campaign list"), args); err != nil {
		return err
	}
	res, err := c.client.ListCampaigns(c.ctx, &pb.ListCampaignsRequest{})
	if err != nil {
		return err
	}
	out := []campaignJSON{}
	for _, k := range res.GetCampaigns() {
		out = append(out, campaignOut(k))
	}
	return printCampaigns(c.out, out)
}

func (c *adminCmd) item(args []string) error {
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
	if err := errors.Join(required("visit", *visit), required("to", *to)); err != nil {
		return err
	}
	kinds := map[string]pb.AmendmentKind{"assigned": pb.AmendmentKind_AMENDMENT_KIND_ITEM_ASSIGN,
		"resolved": pb.AmendmentKind_AMENDMENT_KIND_ITEM_RESOLVE, "closed": pb.AmendmentKind_AMENDMENT_KIND_ITEM_CLOSE}
	kind, ok := kinds[*to]
	if !ok {
		return fmt.Errorf("%w: --to must be assigned, resolved or closed", errUsage)
	}
	req := &pb.UpdateItemRequest{VisitId: *visit, Finding: uint32(*finding), Kind: kind, Unit: *unit, Note: *note, CoUnits: coUnits}
	if *deadline != "" {
		t, err := parseTime(*deadline)
		if err != nil {
			return err
		}
		req.Deadline = timestamppb.New(t)
	}
	res, err := c.client.UpdateItem(c.ctx, req)
	if err != nil {
		return err
	}
	return c.out.print(map[string]string{"id": res.GetAmendment().GetId()}, func(w io.Writer) {
		fmt.Fprintf(w, "item %s/%d is %s\n", *visit, *finding, *to)
	})
}

func (c *adminCmd) at(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return nil, err
	}
	return timestamppb.New(t), nil
}

func pct(n, d uint32) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
}

func (c *adminCmd) report(args []string) error {
	fs := c.flags("report")
	campaign := fs.String("campaign", "", "campaign `id`")
	node := fs.String("node", "", "org node `id` (default: your subtree)")
	atFlag := fs.String("at", "", "the report as of `time`: only what was done before it counts (default now)")
	weekly := fs.Bool("weekly", false, "also the campaign's weeks, each as of its end")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("campaign", *campaign); err != nil {
		return err
	}
	at, err := c.at(*atFlag)
	if err != nil {
		return err
	}
	res, err := c.reports.GetProgress(c.ctx, &pb.GetProgressRequest{NodeId: *node, CampaignId: *campaign, At: at, Weekly: *weekly})
	if err != nil {
		return err
	}
	r := res.GetReport()
	return c.out.print(r, func(w io.Writer) {
		fmt.Fprintf(w, "campaign %s at %s\n", r.GetCampaign().GetName().GetValue(), r.GetAt().AsTime().Local().Format(time.RFC3339))
		fmt.Fprintln(w, "RANK\tNODE\tHOUSEHOLDS\tVISITED\tCOVERAGE\tKEY GROUP\tKEY RATE\tMUST-VISIT OVERDUE\tREVISITS OPEN/OVERDUE\tITEMS OPEN/OVERDUE/ESCALATED\tWITH POSITION\tLINKAGE\tSCORE\tREWARD COMMUNITY/CADRE")
		weighed := len(r.GetRanking().GetWeights()) > 0
		row := func(rank string, f *pb.ProgressFigures) {
			name := f.GetNode().GetName()
			if name == "" {
				name = "all"
			}
			score, reward := "", ""
			if rank != "" && weighed {
				score = fmt.Sprintf("%.1f%%", 100*f.GetScore())
			}
			if f.GetRewardCommunityYuan() != 0 || f.GetRewardLinkCadreYuan() != 0 {
				reward = fmt.Sprintf("%d/%d", f.GetRewardCommunityYuan(), f.GetRewardLinkCadreYuan())
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%d/%d\t%s\t%d\t%d/%d\t%d/%d/%d\t%d\t%s\t%s\t%s\n", rank, name, f.GetHouseholds(), f.GetVisited(),
				pct(f.GetVisited(), f.GetHouseholds()), f.GetKeyGroupVisited(), f.GetKeyGroupHouseholds(),
				pct(f.GetKeyGroupVisited(), f.GetKeyGroupHouseholds()), f.GetMustVisitOverdue(), f.GetRevisitsOpen(), f.GetRevisitsOverdue(),
				f.GetItemsOpen(), f.GetItemsOverdue(), f.GetItemsEscalated(), f.GetVisitsWithPosition(), pct(f.GetMembersLinked(), f.GetMembers()), score, reward)
		}
		row("", r.GetTotal())
		for i, f := range r.GetCommunities() {
			row(strconv.Itoa(i+1), f)
		}
		fmt.Fprintln(w, "\nVISITOR\tROLE\tVISITED\tQUOTA\tATTAINMENT")
		for _, q := range r.GetQuotas() {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", q.GetName(), roleName(int32(q.GetRole())), q.GetVisited(), q.GetQuota(), pct(q.GetVisited(), q.GetQuota()))
		}
		fmt.Fprintln(w, "\nQUESTION\tANSWERED\tPOSITIVE\tRATE")
		for _, s := range r.GetTotal().GetSurvey() {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", s.GetQuestion(), s.GetAnswered(), s.GetPositive(), pct(s.GetPositive(), s.GetAnswered()))
		}
		if len(r.GetWeeks()) > 0 {
			fmt.Fprintln(w, "\nWEEK\tFROM\tUNTIL\tVISITED\tCOVERAGE\tKEY RATE\tQUOTA\tITEMS FOUND/CLOSED/OPEN")
			for i, wk := range r.GetWeeks() {
				f := wk.GetTotal()
				fmt.Fprintf(w, "%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%d/%d/%d\n", i+1, day(wk.GetFrom()), day(timestamppb.New(wk.GetUntil().AsTime().Add(-time.Millisecond))),
					f.GetVisited(), f.GetHouseholds(), pct(f.GetVisited(), f.GetHouseholds()), pct(f.GetKeyGroupVisited(), f.GetKeyGroupHouseholds()),
					pct(wk.GetQuotaVisited(), wk.GetQuotaTotal()), wk.GetItemsOpened(), wk.GetItemsClosed(), f.GetItemsOpen())
			}
		}
	})
}

func (c *adminCmd) reportHouseholds(args []string) error {
	fs := c.flags("report households")
	campaign := fs.String("campaign", "", "campaign `id`")
	node := fs.String("node", "", "org node `id` (default: your subtree)")
	metric := fs.String("metric", "not_visited", "the `figure` whose households to list")
	limit := fs.Uint("limit", 100, "at most `N` households")
	offset := fs.Uint("offset", 0, "skip `N` households")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("campaign", *campaign); err != nil {
		return err
	}
	m, err := enumValue(pb.ReportMetric_value, "REPORT_METRIC_", *metric)
	if err != nil {
		return err
	}
	res, err := c.reports.ListReportHouseholds(c.ctx, &pb.ListReportHouseholdsRequest{NodeId: *node, CampaignId: *campaign,
		Metric: pb.ReportMetric(m), Limit: uint32(*limit), Offset: uint32(*offset)})
	if err != nil {
		return err
	}
	return c.out.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "%d households\n", res.GetTotal())
		fmt.Fprintln(w, "HOUSEHOLD\tHEAD\tADDRESS\tDETAIL")
		for _, h := range res.GetHouseholds() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.GetHouseholdId(), h.GetHeadName(), h.GetAddress(), h.GetDetail())
		}
	})
}

func (c *adminCmd) export(args []string) error {
	fs := c.flags("export")
	campaign := fs.String("campaign", "", "campaign `id` (required for progress; limits the visit register to its window)")
	node := fs.String("node", "", "org node `id` (default: your subtree)")
	kind := fs.String("kind", "ledger", "`what`: ledger, visits, progress, items (the hazard register) or all")
	format := fs.String("format", "xlsx", "`format`: csv or xlsx")
	lang := fs.String("lang", "zh", "column headers' `language`: zh or en")
	out := fs.String("out", "", "output `file` (- for standard output)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("out", *out); err != nil {
		return err
	}
	k, err := enumValue(pb.ExportKind_value, "EXPORT_KIND_", *kind)
	if err != nil {
		return err
	}
	f, err := enumValue(pb.ExportFormat_value, "EXPORT_FORMAT_", *format)
	if err != nil {
		return err
	}
	l, err := enumValue(pb.Language_value, "LANGUAGE_", *lang)
	if err != nil {
		return err
	}
	stream, err := c.reports.Export(c.ctx, &pb.ExportRequest{NodeId: *node, CampaignId: *campaign, Kind: pb.ExportKind(k),
		Format: pb.ExportFormat(f), Language: pb.Language(l)})
	if err != nil {
		return err
	}
	defer stream.Close()
	var w io.Writer = c.out.w
	var file *os.File
	if *out != "-" {
		// Written beside the target and renamed when complete: a cut
		// stream leaves no half file under the name.
		if file, err = os.CreateTemp(filepath.Dir(*out), ".export-*"); err != nil {
			return err
		}
		defer os.Remove(file.Name())
		defer file.Close()
		w = file
	}
	n := 0
	for stream.Receive() {
		m, err := w.Write(stream.Msg().GetData())
		if err != nil {
			return err
		}
		n += m
	}
	if err := stream.Err(); err != nil {
		return err
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return err
		}
		if err := os.Rename(file.Name(), *out); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "wrote %d bytes to %s\n", n, *out)
	}
	return nil
}

func (c *adminCmd) audit(args []string) error {
	fs := c.flags("audit")
	limit := fs.Uint("limit", 50, "the newest `N` entries")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	res, err := c.reports.ListAuditLog(c.ctx, &pb.ListAuditLogRequest{Limit: uint32(*limit)})
	if err != nil {
		return err
	}
	return c.out.print(res, func(w io.Writer) {
		fmt.Fprintln(w, "WHEN\tWHO\tWHAT\tNODE\tCAMPAIGN")
		for _, e := range res.GetEntries() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.GetAt().AsTime().Local().Format(time.RFC3339), e.GetAdminName(), e.GetAction(), e.GetNodeId(), e.GetCampaignId())
		}
	})
}

// campaignRanking sets how a campaign ranks its communities: weights of
// the rates, and rewards and fines by rank.
func (c *adminCmd) campaignRanking(args []string) error {
	fs := c.flags("campaign ranking")
	id := fs.String("id", "", "campaign `id`")
	var weights, bands multi
	fs.Var(&weights, "weight", "`METRIC=N`: coverage, key_group or a question's code, and its weight (repeat)")
	fs.Var(&bands, "reward", "`FROM-TO=COMMUNITY/CADRE`: yuan for the ranks FROM to TO (TO empty: and after), negative for a fine (repeat)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("id", *id); err != nil {
		return err
	}
	r := &pb.Ranking{}
	for _, w := range weights {
		m, n, ok := strings.Cut(w, "=")
		v, err := strconv.ParseUint(n, 10, 32)
		if !ok || err != nil {
			return fmt.Errorf("%w: --weight %q: want METRIC=N", errUsage, w)
		}
		r.Weights = append(r.Weights, &pb.RankingWeight{Metric: m, Weight: uint32(v)})
	}
	for _, b := range bands {
		spec, err := fieldwork.DecodeRanking(";" + b)
		if err != nil || len(spec.Bands) != 1 {
			return fmt.Errorf("%w: --reward %q: want FROM-TO=COMMUNITY/CADRE, e.g. 1-7=3000/300 or 61-=-3000/-300", errUsage, b)
		}
		x := spec.Bands[0]
		r.Bands = append(r.Bands, &pb.RewardBand{FromRank: x.From, ToRank: x.To, CommunityYuan: x.Community, LinkCadreYuan: x.LinkCadre})
	}
	res, err := c.client.SetRanking(c.ctx, &pb.SetRankingRequest{CampaignId: *id, Ranking: r})
	if err != nil {
		return err
	}
	return c.out.print(res.GetRanking(), func(w io.Writer) {
		fmt.Fprintf(w, "campaign %s ranks by %d weights, with %d bands of rewards and fines\n", *id, len(res.GetRanking().GetWeights()), len(res.GetRanking().GetBands()))
	})
}

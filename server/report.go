package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/doorbook/doorbook/fieldwork"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/server/export"
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/words"
	"github.com/doorbook/doorbook/syncengine"
)

type reportService struct{ *Server }

func checkIDs(ids map[string]string) error {
	for what, id := range ids {
		if id != "" && !syncengine.IsID(id) {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s %q is not a UUID", what, id))
		}
	}
	return nil
}

// audit records a read before it is served: no record, no data.
func (s *reportService) audit(ctx context.Context, action, node, campaign string) error {
	return s.store.Audit(ctx, principal(ctx), store.AuditEntry{At: s.now(), Action: action, NodeID: node, CampaignID: campaign})
}

func (s *reportService) at(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return s.now()
	}
	return t.AsTime()
}

// progress is a report computed from an analysis.
type progress struct {
	an          *store.Analysis
	at          time.Time
	total       fieldwork.Figures
	escalated   int
	communities []communityFigures
}

type communityFigures struct {
	node              store.OrgNode
	fig               fieldwork.Figures
	placed, escalated int
}

func newProgress(an *store.Analysis, at time.Time) *progress {
	p := &progress{an: an, at: at, total: an.Fieldwork.Figures(at, nil), escalated: an.Fieldwork.Escalated(at, int32(an.Node.Level), nil)}
	if an.Node.Level == 0 {
		// The whole installation answers for everything escalated.
		p.escalated = an.Fieldwork.Escalated(at, int32(store.LevelGrid), nil)
	}
	// Each community's figures in one pass over the households, not one
	// per community: a street has dozens of communities and 50,000
	// households.
	communityOf := map[string]string{}
	for _, n := range an.Nodes {
		if n.Level == store.LevelGrid && an.Nodes[n.ParentID].Level == store.LevelCommunity {
			communityOf[n.ID] = n.ParentID
		}
	}
	community := func(h *fieldwork.Household) string { return communityOf[h.GridID] }
	figures := an.Fieldwork.FiguresBy(at, community)
	escalated := an.Fieldwork.EscalatedBy(at, int32(store.LevelCommunity), community)
	placed := map[string]int{}
	for grid, count := range an.Placed.ByGrid {
		placed[an.Nodes[grid].ParentID] += count
	}
	for _, n := range an.Nodes {
		if n.Level != store.LevelCommunity {
			continue
		}
		fig := an.Fieldwork.EmptyFigures()
		if f := figures[n.ID]; f != nil {
			fig = *f
		}
		p.communities = append(p.communities, communityFigures{n, fig, placed[n.ID], escalated[n.ID]})
	}
	// The ranking (通报排名): by the campaign's weights, else coverage then
	// key-group rate; then by name.
	slices.SortFunc(p.communities, func(a, b communityFigures) int {
		return cmp.Or(an.Ranking.Compare(&a.fig, &b.fig), cmp.Compare(a.node.Name, b.node.Name), cmp.Compare(a.node.ID, b.node.ID))
	})
	return p
}

func figuresToProto(n store.OrgNode, f *fieldwork.Figures, placed, escalated int) *pb.ProgressFigures {
	out := &pb.ProgressFigures{VisitsWithPosition: uint32(placed), ItemsEscalated: uint32(escalated),
		Node: nodeToProto(n), Households: uint32(f.Households), Visited: uint32(f.Visited),
		KeyGroupHouseholds: uint32(f.KeyGroupHouseholds), KeyGroupVisited: uint32(f.KeyGroupVisited),
		MustVisitOverdue: uint32(f.MustVisitOverdue), RevisitsOpen: uint32(f.RevisitsOpen), RevisitsOverdue: uint32(f.RevisitsOverdue),
		ItemsOpen: uint32(f.ItemsOpen), ItemsOverdue: uint32(f.ItemsOverdue),
		Members: uint32(f.Members), MembersLinked: uint32(f.MembersLinked), MembersMismatch: uint32(f.MembersMismatch),
		Persons: uint32(f.Persons), PersonsMigrant: uint32(f.Migrants), PersonsMovedAway: uint32(f.MovedAway),
	}
	for _, r := range f.Survey {
		out.Survey = append(out.Survey, &pb.SurveyRate{Question: r.Question.Code, TextZh: r.Question.TextZH, TextEn: r.Question.TextEN,
			Answered: uint32(r.Answered), Positive: uint32(r.Positive)})
	}
	return out
}

func (p *progress) quotas() []*pb.PersonQuota {
	var out []*pb.PersonQuota
	for _, w := range p.an.Workers {
		q := &pb.PersonQuota{WorkerId: w.ID, Name: w.Name, Role: pb.WorkerRole(w.Role), Visited: uint32(p.an.Fieldwork.VisitedBy(w.ID))}
		if c := p.an.Campaign; c != nil {
			q.Quota = c.QuotaFor(w.Role)
		}
		out = append(out, q)
	}
	return out
}

func (p *progress) toProto() *pb.ProgressReport {
	r := &pb.ProgressReport{At: timestamppb.New(p.at), Total: figuresToProto(p.an.Node, &p.total, p.an.Placed.Total, p.escalated), Quotas: p.quotas()}
	if p.an.Campaign != nil {
		r.Campaign = wire.CampaignToProto(p.an.Campaign)
	}
	r.Ranking = rankingToProto(p.an.Ranking)
	for i := range p.communities {
		c := &p.communities[i]
		f := figuresToProto(c.node, &c.fig, c.placed, c.escalated)
		f.Rank, f.Score = uint32(i+1), p.an.Ranking.Score(&c.fig)
		if b, ok := p.an.Ranking.Band(i + 1); ok {
			f.RewardCommunityYuan, f.RewardLinkCadreYuan = b.Community, b.LinkCadre
		}
		r.Communities = append(r.Communities, f)
	}
	return r
}

// until is the moment a report is as of: the request's at, or none (now,
// with every visit the server holds).
func until(at *timestamppb.Timestamp) time.Time {
	if at == nil {
		return time.Time{}
	}
	return at.AsTime()
}

func (s *reportService) analyze(ctx context.Context, node, campaign string, asOf time.Time) (*store.Analysis, error) {
	if err := checkIDs(map[string]string{"node_id": node, "campaign_id": campaign}); err != nil {
		return nil, err
	}
	if campaign == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("a progress report is of a campaign: campaign_id is required"))
	}
	an, err := s.store.Analyze(ctx, principal(ctx), node, campaign, asOf)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return an, nil
}

func (s *reportService) GetProgress(ctx context.Context, req *pb.GetProgressRequest) (*pb.GetProgressResponse, error) {
	at := s.at(req.GetAt())
	// The weeks are read beside the report, in their own snapshot: two
	// cores make them ready together. They are kept only if the report
	// is, which checks the request.
	var weeks []*pb.WeekProgress
	weekly := make(chan error, 1)
	if req.GetWeekly() {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer func() {
				if p := recover(); p != nil {
					weekly <- toConnect(s.log, fmt.Errorf("weekly series: %v", p))
				}
			}()
			var err error
			weeks, err = s.weeks(wctx, req.GetNodeId(), req.GetCampaignId(), at)
			weekly <- err
		}()
	} else {
		weekly <- nil
	}
	an, err := s.analyze(ctx, req.GetNodeId(), req.GetCampaignId(), until(req.GetAt()))
	if err != nil {
		return nil, err
	}
	if err := <-weekly; err != nil {
		return nil, err
	}
	if err := s.audit(ctx, "report progress", req.GetNodeId(), req.GetCampaignId()); err != nil {
		return nil, toConnect(s.log, err)
	}
	p := newProgress(an, at)
	addStat(ctx, "households", p.total.Households)
	rep := p.toProto()
	rep.Weeks = weeks
	return &pb.GetProgressResponse{Report: rep}, nil
}

// maxWeeks bounds a weekly series: the latest weeks of a longer campaign.
const maxWeeks = 60

// weekEnds are the moments of the weekly series of a campaign's window
// [start, end) up to at: the start, then each week's end (none if the
// campaign has not begun by at).
func weekEnds(start, end, at time.Time) []time.Time {
	const week = 7 * 24 * time.Hour
	stop := end
	if at.Before(stop) {
		stop = at
	}
	if !start.Before(stop) {
		return nil
	}
	if n := int(stop.Sub(start)/week) + 1; n > maxWeeks {
		start = start.Add(time.Duration(n-maxWeeks) * week)
	}
	untils := []time.Time{start}
	for from := start; from.Before(stop); from = from.Add(week) {
		until := from.Add(week)
		if stop.Before(until) {
			until = stop
		}
		untils = append(untils, until)
	}
	return untils
}

// weeks is the weekly series of a campaign's progress on node up to at:
// each week's figures as of its end (an analysis each), and the items
// found and closed off in it.
func (s *reportService) weeks(ctx context.Context, node, campaign string, at time.Time) ([]*pb.WeekProgress, error) {
	untils, ans, err := s.store.AnalyzeSeries(ctx, principal(ctx), node, campaign, func(from, to time.Time) []time.Time {
		return weekEnds(from, to, at)
	})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	if len(ans) == 0 {
		return nil, nil
	}
	start := untils[0]
	_, closedBefore := ans[0].Fieldwork.ItemTally(start, start)
	var out []*pb.WeekProgress
	for i, an := range ans[1:] {
		from, until := untils[i], untils[i+1]
		p := newProgress(an, until)
		opened, closed := an.Fieldwork.ItemTally(from, until)
		w := &pb.WeekProgress{From: timestamppb.New(from), Until: timestamppb.New(until),
			Total: figuresToProto(an.Node, &p.total, an.Placed.Total, p.escalated), ItemsOpened: uint32(opened), ItemsClosed: uint32(max(closed-closedBefore, 0))}
		for _, q := range p.quotas() {
			// Each person counts up to their quota: one who did more does
			// not make up for one who did less.
			w.QuotaVisited += min(q.GetVisited(), q.GetQuota())
			w.QuotaTotal += q.GetQuota()
		}
		closedBefore = closed
		out = append(out, w)
	}
	return out, nil
}

func (s *reportService) ListReportHouseholds(ctx context.Context, req *pb.ListReportHouseholdsRequest) (*pb.ListReportHouseholdsResponse, error) {
	metric := fieldwork.Metric(req.GetMetric())
	if metric < fieldwork.MetricNotVisited || metric > fieldwork.MetricMembersMismatch {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unknown metric %v", req.GetMetric()))
	}
	an, err := s.analyze(ctx, req.GetNodeId(), req.GetCampaignId(), until(req.GetAt()))
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, "report households "+strings.ToLower(strings.TrimPrefix(req.GetMetric().String(), "REPORT_METRIC_")), req.GetNodeId(), req.GetCampaignId()); err != nil {
		return nil, toConnect(s.log, err)
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	at := s.at(req.GetAt())
	res := &pb.ListReportHouseholdsResponse{}
	for _, h := range an.Fieldwork.Households {
		ok, detail := metric.Match(h, at)
		if !ok {
			continue
		}
		res.Total++
		if int(res.Total) > int(req.GetOffset()) && len(res.Households) < limit {
			res.Households = append(res.Households, &pb.ReportHousehold{HouseholdId: h.ID, GridId: h.GridID, HeadName: h.HeadName, Address: h.Address, Detail: detail})
		}
	}
	return res, nil
}

func (s *reportService) GetHousehold(ctx context.Context, req *pb.GetHouseholdRequest) (*pb.GetHouseholdResponse, error) {
	v, err := s.store.Household(ctx, principal(ctx), req.GetHouseholdId())
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	if err := s.audit(ctx, "household "+req.GetHouseholdId(), v.Grid.ID, ""); err != nil {
		return nil, toConnect(s.log, err)
	}
	slices.SortFunc(v.Bundle.Visits, func(a, b syncengine.Visit) int {
		return cmp.Or(a.VisitedAt.Compare(b.VisitedAt), strings.Compare(a.ID, b.ID))
	})
	rows := wire.BundleToProto(&v.Bundle)
	res := &pb.GetHouseholdResponse{Household: rows.Households[0], Persons: rows.Persons, Tags: rows.Tags,
		Visits: rows.Visits, Amendments: rows.Amendments, Grid: nodeToProto(v.Grid)}
	fw, now := &v.Fieldwork, s.now()
	if due := fw.NextDue(); !due.IsZero() {
		res.NextDue = timestamppb.New(due)
	}
	res.PastDue = fw.PastInterval(now)
	if fw.FollowUp != nil {
		res.RevisitDue = timestamppb.New(fw.FollowUp.Due)
	}
	for _, it := range fw.Items {
		res.Items = append(res.Items, itemToProto(&it, now))
	}
	return res, nil
}

func itemToProto(it *syncengine.Item, now time.Time) *pb.TrackedItem {
	item := &pb.TrackedItem{VisitId: it.VisitID, Finding: it.Finding, Kind: pb.FindingKind(it.Kind), Note: it.Note,
		ReportedAt: timestamppb.New(it.ReportedAt), State: pb.ItemState(it.State), Unit: it.Unit, CoUnits: it.CoUnits, StateNote: it.StateNote,
		Overdue: it.Overdue(now)}
	if !it.Deadline.IsZero() {
		item.Deadline = timestamppb.New(it.Deadline)
	}
	return item
}

func (s *reportService) ListItems(ctx context.Context, req *pb.ListItemsRequest) (*pb.ListItemsResponse, error) {
	if err := checkIDs(map[string]string{"node_id": req.GetNodeId()}); err != nil {
		return nil, err
	}
	an, err := s.store.AnalyzeItems(ctx, principal(ctx), req.GetNodeId(), time.Time{})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	if err := s.audit(ctx, "items", req.GetNodeId(), ""); err != nil {
		return nil, toConnect(s.log, err)
	}
	states := map[syncengine.ItemState]bool{}
	for _, st := range req.GetStates() {
		states[syncengine.ItemState(st)] = true
	}
	now := s.now()
	matched := trackedItems(an, func(it *syncengine.Item) bool {
		return (len(states) == 0 || states[it.State]) && (req.GetUnit() == "" || it.Unit == req.GetUnit()) &&
			(!req.GetOverdueOnly() || it.Overdue(now))
	})
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	// Escalations name the nodes above the node asked for, as far as the
	// caller's tree goes.
	tree := an.Nodes
	if all, err := s.store.ListOrgNodes(ctx, principal(ctx)); err == nil {
		tree = make(map[string]store.OrgNode, len(all))
		for _, n := range all {
			tree[n.ID] = n
		}
	}
	res := &pb.ListItemsResponse{Total: uint32(len(matched))}
	for _, m := range matched[min(int(req.GetOffset()), len(matched)):] {
		if len(res.Items) == limit {
			break
		}
		item := itemToProto(m.item, now)
		if lv := m.item.EscalatedAfter(now, an.Fieldwork.EscalationPeriod); lv != 0 {
			item.EscalatedTo = pb.OrgLevel(lv)
			item.EscalatedToName = nodeAbove(tree, m.h.GridID, lv)
		}
		res.Items = append(res.Items, &pb.ListedItem{Item: item, HouseholdId: m.h.ID,
			HeadName: m.h.HeadName, Address: m.h.Address, GridId: m.h.GridID})
	}
	return res, nil
}

// nodeAbove names the node of level lv above grid, as far as nodes (the
// caller's tree) show it; "" if they do not.
func nodeAbove(nodes map[string]store.OrgNode, grid string, lv int32) string {
	for n, ok := nodes[grid]; ok; n, ok = nodes[n.ParentID] {
		if int32(n.Level) == lv {
			return n.Name
		}
	}
	return ""
}

// listedItem is a tracked item with its household.
type listedItem struct {
	item *syncengine.Item
	h    *fieldwork.Household
}

// trackedItems lists the items of an's households that keep says to,
// each once (a group visit's item is every household's), in the order of
// the register: open ones first, then the nearest deadline (none last),
// then the oldest.
func trackedItems(an *store.Analysis, keep func(*syncengine.Item) bool) []listedItem {
	var matched []listedItem
	seen := map[string]bool{}
	for _, h := range an.Fieldwork.Households {
		for i := range h.Items {
			it := &h.Items[i]
			key := it.VisitID + "/" + strconv.Itoa(int(it.Finding))
			if seen[key] || !keep(it) {
				continue
			}
			seen[key] = true
			matched = append(matched, listedItem{it, h})
		}
	}
	slices.SortFunc(matched, func(a, b listedItem) int {
		x, y := a.item, b.item
		if c := cmp.Compare(boolRank(!x.State.Open()), boolRank(!y.State.Open())); c != 0 {
			return c
		}
		if c := cmp.Compare(boolRank(x.Deadline.IsZero()), boolRank(y.Deadline.IsZero())); c != 0 {
			return c
		}
		return cmp.Or(x.Deadline.Compare(y.Deadline), x.ReportedAt.Compare(y.ReportedAt),
			strings.Compare(x.VisitID, y.VisitID), cmp.Compare(x.Finding, y.Finding))
	})
	return matched
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *reportService) ListAuditLog(ctx context.Context, req *pb.ListAuditLogRequest) (*pb.ListAuditLogResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 100
	}
	entries, err := s.store.AuditLog(ctx, principal(ctx), limit)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ListAuditLogResponse{}
	for _, e := range entries {
		res.Entries = append(res.Entries, &pb.AuditEntry{Id: e.ID, At: timestamppb.New(e.At), AdminId: e.AdminID, AdminName: e.AdminName,
			Action: e.Action, NodeId: e.NodeID, CampaignId: e.CampaignID})
	}
	return res, nil
}

// chunkWriter sends what an export writes as stream messages of up to
// chunkSize bytes.
type chunkWriter struct {
	send  func(*pb.ExportResponse) error
	first *pb.ExportResponse
	buf   []byte
	sent  int
}

const chunkSize = 64 << 10

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for len(w.buf) >= chunkSize {
		if err := w.flush(chunkSize); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *chunkWriter) flush(n int) error {
	msg := &pb.ExportResponse{Data: slices.Clone(w.buf[:n])}
	if w.first != nil {
		msg.Filename, msg.ContentType, w.first = w.first.Filename, w.first.ContentType, nil
	}
	w.buf = w.buf[:copy(w.buf, w.buf[n:])]
	w.sent += n
	return w.send(msg)
}

func (w *chunkWriter) Close() error {
	if len(w.buf) > 0 || w.first != nil {
		return w.flush(len(w.buf))
	}
	return nil
}

func (s *reportService) Export(ctx context.Context, req *pb.ExportRequest, stream *connect.ServerStream[pb.ExportResponse]) error {
	if err := checkIDs(map[string]string{"node_id": req.GetNodeId(), "campaign_id": req.GetCampaignId()}); err != nil {
		return err
	}
	kind, format := req.GetKind(), req.GetFormat()
	kindName := strings.ToLower(strings.TrimPrefix(kind.String(), "EXPORT_KIND_"))
	formatName := strings.ToLower(strings.TrimPrefix(format.String(), "EXPORT_FORMAT_"))
	switch {
	case kind == pb.ExportKind_EXPORT_KIND_UNSPECIFIED || kindName == kind.String():
		return connect.NewError(connect.CodeInvalidArgument, errors.New("export kind: ledger, visits, progress or all"))
	case format == pb.ExportFormat_EXPORT_FORMAT_UNSPECIFIED || formatName == format.String():
		return connect.NewError(connect.CodeInvalidArgument, errors.New("export format: csv or xlsx"))
	case kind == pb.ExportKind_EXPORT_KIND_ALL && format != pb.ExportFormat_EXPORT_FORMAT_XLSX:
		return connect.NewError(connect.CodeInvalidArgument, errors.New("all sheets at once need a workbook: use xlsx"))
	}
	p := principal(ctx)
	l := labels{zh: req.GetLanguage() != pb.Language_LANGUAGE_EN}
	ex := &exporter{s: s, p: p, l: l, node: req.GetNodeId(), at: s.at(req.GetAt()), until: until(req.GetAt())}
	if err := ex.prepare(ctx, req.GetCampaignId(), kind); err != nil {
		return err
	}
	if err := s.audit(ctx, "export "+kindName+" "+formatName, req.GetNodeId(), req.GetCampaignId()); err != nil {
		return toConnect(s.log, err)
	}
	cw := &chunkWriter{send: stream.Send, first: &pb.ExportResponse{Filename: ex.filename(kindName, formatName)}}
	var w export.Writer
	if format == pb.ExportFormat_EXPORT_FORMAT_XLSX {
		w, cw.first.ContentType = export.NewXLSX(cw), export.XLSXType
	} else {
		w, cw.first.ContentType = export.NewCSV(cw), export.CSVType
	}
	err := ex.write(ctx, w, kind)
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = cw.Close()
	}
	addStat(ctx, "bytes", cw.sent)
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return err
		}
		return toConnect(s.log, err)
	}
	return nil
}

// exporter writes the sheets of an export.
type exporter struct {
	s    *reportService
	p    store.Principal
	l    labels
	node string
	at   time.Time
	// until is the moment the export is as of (zero: now, every visit).
	until    time.Time
	an       *store.Analysis // for progress
	campaign *syncengine.Campaign
	nodes    map[string]store.OrgNode
	workers  map[string]store.Worker
	cats     map[string]syncengine.Category
}

func (ex *exporter) prepare(ctx context.Context, campaign string, kind pb.ExportKind) error {
	if kind == pb.ExportKind_EXPORT_KIND_ITEMS && campaign == "" {
		// The register holds every item, whatever campaign found it.
		an, err := ex.s.store.AnalyzeItems(ctx, ex.p, ex.node, ex.until)
		if err != nil {
			return toConnect(ex.s.log, err)
		}
		ex.an = an
	} else if kind == pb.ExportKind_EXPORT_KIND_PROGRESS || kind == pb.ExportKind_EXPORT_KIND_ALL || kind == pb.ExportKind_EXPORT_KIND_ITEMS {
		an, err := ex.s.analyze(ctx, ex.node, campaign, ex.until)
		if err != nil {
			return err
		}
		ex.an, ex.campaign = an, an.Campaign
	} else if campaign != "" {
		cs, err := ex.s.store.ListCampaigns(ctx, ex.p)
		if err != nil {
			return toConnect(ex.s.log, err)
		}
		for i := range cs {
			if cs[i].ID == campaign {
				ex.campaign = &cs[i]
			}
		}
		if ex.campaign == nil {
			// Unknown, or another subtree's: the caller may not tell which.
			return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("campaign %s is not one you can see", campaign))
		}
	}
	nodes, err := ex.s.store.ListOrgNodes(ctx, ex.p)
	if err != nil {
		return toConnect(ex.s.log, err)
	}
	ex.nodes = map[string]store.OrgNode{}
	for _, n := range nodes {
		ex.nodes[n.ID] = n
	}
	if _, ok := ex.nodes[ex.node]; ex.node != "" && !ok {
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("org node %s is outside your subtree", ex.node))
	}
	ws, err := ex.s.store.ListWorkers(ctx, ex.p)
	if err != nil {
		return toConnect(ex.s.log, err)
	}
	ex.workers = map[string]store.Worker{}
	for _, w := range ws {
		ex.workers[w.ID] = w
	}
	cats, err := ex.s.store.ListCategories(ctx, ex.p)
	if err != nil {
		return toConnect(ex.s.log, err)
	}
	ex.cats = map[string]syncengine.Category{}
	for _, c := range cats {
		ex.cats[c.Code] = c
	}
	return nil
}

func (ex *exporter) filename(kind, format string) string {
	name := "doorbook"
	if n, ok := ex.nodes[ex.node]; ok {
		name = n.Name
	}
	return fmt.Sprintf("%s-%s-%s.%s", name, kind, ex.at.Format("20060102"), format)
}

func (ex *exporter) write(ctx context.Context, w export.Writer, kind pb.ExportKind) error {
	if t, ok := w.(export.Titled); ok {
		t.Title(ex.title())
	}
	all := kind == pb.ExportKind_EXPORT_KIND_ALL
	if all || kind == pb.ExportKind_EXPORT_KIND_LEDGER {
		if err := ex.ledger(ctx, w); err != nil {
			return err
		}
	}
	if all || kind == pb.ExportKind_EXPORT_KIND_VISITS {
		if err := ex.visits(ctx, w); err != nil {
			return err
		}
	}
	if all || kind == pb.ExportKind_EXPORT_KIND_PROGRESS {
		if err := ex.progress(ctx, w); err != nil {
			return err
		}
	}
	if all || kind == pb.ExportKind_EXPORT_KIND_ITEMS {
		return ex.items(w)
	}
	return nil
}

// escalatedTo names the node above grid at level lv, as far as the
// caller's tree shows it (else the level's word).
func (ex *exporter) escalatedTo(grid string, lv int32) string {
	return cmp.Or(nodeAbove(ex.nodes, grid, lv), ex.l.level(lv))
}

// items writes the hazard register (挂牌督办台账): every tracked item,
// open ones first, with how many days each open one is past its deadline.
func (ex *exporter) items(w export.Writer) error {
	if err := w.Sheet(ex.l.pick("挂牌督办台账", "hazard register"), ex.l.itemsHeader()); err != nil {
		return err
	}
	for _, m := range trackedItems(ex.an, func(*syncengine.Item) bool { return true }) {
		it := m.item
		reporter, _ := ex.workerName(it.ReportedBy)
		var deadline, overdue any = "", ""
		if !it.Deadline.IsZero() {
			deadline = officeDay(it.Deadline)
		}
		if it.Overdue(ex.at) {
			overdue = int(math.Ceil(ex.at.Sub(it.Deadline).Hours() / 24))
		}
		escalated := ""
		if lv := it.EscalatedAfter(ex.at, ex.an.Fieldwork.EscalationPeriod); lv != 0 {
			escalated = ex.escalatedTo(m.h.GridID, lv)
		}
		if err := w.Row(m.h.HeadName, m.h.Address, ex.nodes[m.h.GridID].Name, words.Of(words.Finding, it.Kind, ex.l.zh), it.Note,
			officeDay(it.ReportedAt), reporter, it.Unit, strings.Join(it.CoUnits, "、"), deadline, words.Of(words.ItemState, it.State, ex.l.zh), it.StateNote, overdue, escalated); err != nil {
			return err
		}
	}
	return nil
}

// title heads each sheet of a workbook: the node, the campaign, the
// date, as an office writes them on what it hands upward.
func (ex *exporter) title() string {
	parts := []string{ex.l.pick("全部", "all")}
	if n, ok := ex.nodes[ex.node]; ok {
		parts[0] = n.Name
	}
	if ex.campaign != nil {
		parts = append(parts, ex.campaign.Name.Value)
	}
	parts = append(parts, ex.l.pick("截至 ", "as of ")+ex.at.In(syncengine.ChinaTime).Format("2006-01-02 15:04"))
	return strings.Join(parts, " · ")
}

func (ex *exporter) lang() string {
	if ex.l.zh {
		return "zh"
	}
	return "en"
}

func (ex *exporter) workerName(id string) (string, int32) {
	if w, ok := ex.workers[id]; ok {
		return w.Name, w.Role
	}
	return id, 0
}

// ledger writes the household ledger (台账), a page of households at a time.
func (ex *exporter) ledger(ctx context.Context, w export.Writer) error {
	if err := w.Sheet(ex.l.pick("台账", "ledger"), ex.l.ledgerHeader()); err != nil {
		return err
	}
	return ex.s.store.LedgerPages(ctx, ex.p, ex.node, func(b store.LedgerPage) error {
		persons := map[string][]string{}
		for _, p := range b.Persons {
			if !p.Deleted.Value {
				persons[p.HouseholdID] = append(persons[p.HouseholdID], ledger.PersonText(p.Name.Value, p.Residence.Value, ex.l.zh))
			}
		}
		tags := map[string][]syncengine.TagElement{}
		for _, t := range b.Tags {
			tags[t.HouseholdID] = append(tags[t.HouseholdID], t)
		}
		for _, h := range b.Households {
			var cats []string
			for _, code := range syncengine.Categories(tags[h.ID]) {
				if c, ok := ex.cats[code]; ok {
					cats = append(cats, c.Name(ex.lang()))
				} else {
					cats = append(cats, code)
				}
			}
			grid := ex.nodes[h.GridID.Value]
			err := w.Row(h.ID, ex.nodes[grid.ParentID].Name, grid.Name, h.HeadName.Value, h.Address.Value, h.PhoneMobile.Value, h.PhoneLandline.Value,
				h.ResponsibleWorker.Value, h.ResponsibleLeader.Value, h.ResponsibleUnit.Value, h.MemberCount.Value,
				strings.Join(persons[h.ID], "、"), strings.Join(cats, "、"), officeDay(b.LastVisit[h.ID]))
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// visits writes the visit register (入户下访登记表), by visitor and date,
// limited to the campaign's window when there is one.
func (ex *exporter) visits(ctx context.Context, w export.Writer) error {
	if err := w.Sheet(ex.l.pick("入户下访登记表", "visit register"), ex.l.visitHeader()); err != nil {
		return err
	}
	return ex.s.store.VisitPages(ctx, ex.p, ex.node, func(b syncengine.Bundle) error {
		amendments := map[string][]syncengine.Amendment{}
		for _, a := range b.Amendments {
			amendments[a.VisitID] = append(amendments[a.VisitID], a)
		}
		households := map[string]syncengine.Household{}
		for _, h := range b.Households {
			households[h.ID] = h
		}
		files, err := ex.files(ctx, b.Visits)
		if err != nil {
			return err
		}
		for _, v := range b.Visits {
			view := syncengine.Effective(v, amendments[v.ID])
			if ex.campaign != nil && !ex.campaign.In(view.VisitedAt) {
				continue
			}
			var heads, addrs, mats, finds, reasons []string
			for _, id := range v.HouseholdIDs {
				if h, ok := households[id]; ok { // others lie outside the caller's subtree
					heads = append(heads, h.HeadName.Value)
					addrs = append(addrs, h.Address.Value)
				}
			}
			for _, m := range v.Materials {
				mats = append(mats, words.Of(words.Material, m, ex.l.zh))
			}
			for _, f := range v.Findings {
				s := words.Of(words.Finding, f.Kind, ex.l.zh)
				if f.Note != "" {
					s += ": " + f.Note
				}
				finds = append(finds, s)
			}
			for _, r := range v.RevisitReasons {
				reasons = append(reasons, words.Of(words.Reason, r, ex.l.zh))
			}
			revisit := ""
			if len(reasons) > 0 {
				revisit = strings.Join(reasons, "、") + " " + ex.l.pick("截止", "due") + " " + officeDay(v.RevisitDue).Format("2006-01-02")
			}
			status := ""
			if view.Voided {
				status = ex.l.pick("作废: ", "void: ") + view.VoidReason
			}
			visitor, role := ex.workerName(v.VisitorID)
			if err := w.Row(visitor, ex.l.role(role), officeDay(view.VisitedAt), ex.l.form(view.Form), len(v.HouseholdIDs), strings.Join(heads, "、"),
				strings.Join(addrs, "、"), strings.Join(mats, "、"), strings.Join(finds, "；"), revisit, view.Notes, status,
				positionText(v.Position), strings.Join(files[v.ID], "\n")); err != nil {
				return err
			}
		}
		return nil
	})
}

// files names each visit's files: its name and the SHA-256 that fetches
// it (doorbook admin attachment get, or the console's household page).
func (ex *exporter) files(ctx context.Context, vs []syncengine.Visit) (map[string][]string, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	as, err := ex.s.store.ListAttachments(ctx, ex.p, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, a := range as {
		out[a.VisitID] = append(out[a.VisitID], a.Name+" "+a.SHA256)
	}
	return out, nil
}

// officeDay is t in the offices' time zone: a date in an export is the day
// the office lived it (a visit at 07:30 in Hunan is not the day before), as
// the console shows it. The zero time stays zero: no date.
func officeDay(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(syncengine.ChinaTime)
}

// positionText is a visit's place as a clerk reads it and a map takes it:
// "latitude, longitude ±accuracy m" ("" when the phone had no fix).
func positionText(p *syncengine.Position) string {
	if p == nil {
		return ""
	}
	s := strconv.FormatFloat(p.Latitude, 'f', 6, 64) + ", " + strconv.FormatFloat(p.Longitude, 'f', 6, 64)
	if p.AccuracyMeters > 0 {
		s += " ±" + strconv.FormatFloat(math.Round(p.AccuracyMeters), 'f', 0, 64) + " m"
	}
	return s
}

// percent is n of d as a share, shown as a percentage (none of none is
// 0%).
func percent(n, d int) export.Percent {
	if d == 0 {
		return 0
	}
	return export.Percent(math.Round(1000*float64(n)/float64(d)) / 1000)
}

// progress writes the progress report: the node and its communities
// ranked, the quotas per person, the survey rates.
func (ex *exporter) progress(ctx context.Context, w export.Writer) error {
	p := newProgress(ex.an, ex.at)
	if err := w.Sheet(ex.l.pick("进度", "progress"), ex.l.figuresHeader()); err != nil {
		return err
	}
	row := func(rank int, n store.OrgNode, f *fieldwork.Figures) error {
		name := n.Name
		if name == "" {
			name = ex.l.pick("全部", "all")
		}
		// A community's score and what its rank brings, when the
		// campaign's ranking says.
		var place, score, community, cadre any = "", "", "", ""
		if rank > 0 {
			place = rank
			if ex.an.Ranking.Weighed() {
				score = export.Percent(math.Round(1000*ex.an.Ranking.Score(f)) / 1000)
			}
			if b, ok := ex.an.Ranking.Band(rank); ok {
				community, cadre = b.Community, b.LinkCadre
			}
		}
		return w.Row(place, name, ex.l.level(int32(n.Level)), f.Households, f.Visited, percent(f.Visited, f.Households),
			f.KeyGroupHouseholds, f.KeyGroupVisited, percent(f.KeyGroupVisited, f.KeyGroupHouseholds), f.MustVisitOverdue,
			f.RevisitsOpen, f.RevisitsOverdue, f.ItemsOpen, f.ItemsOverdue, score, community, cadre)
	}
	if err := row(0, ex.an.Node, &p.total); err != nil {
		return err
	}
	for i := range p.communities {
		if err := row(i+1, p.communities[i].node, &p.communities[i].fig); err != nil {
			return err
		}
	}
	if err := w.Sheet(ex.l.pick("任务完成", "quotas"), ex.l.quotaHeader()); err != nil {
		return err
	}
	for _, q := range p.quotas() {
		if err := w.Row(q.Name, ex.l.role(int32(q.Role)), int(q.Visited), int(q.Quota), percent(int(q.Visited), int(q.Quota))); err != nil {
			return err
		}
	}
	if err := w.Sheet(ex.l.pick("民调", "survey"), ex.l.surveyHeader()); err != nil {
		return err
	}
	survey := func(n store.OrgNode, f *fieldwork.Figures) error {
		for _, r := range f.Survey {
			text := r.Question.TextEN
			if ex.l.zh || text == "" {
				text = cmp.Or(r.Question.TextZH, r.Question.TextEN, r.Question.Code)
			}
			if err := w.Row(cmp.Or(n.Name, ex.l.pick("全部", "all")), text, r.Answered, r.Positive, percent(r.Positive, r.Answered)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := survey(ex.an.Node, &p.total); err != nil {
		return err
	}
	for i := range p.communities {
		if err := survey(p.communities[i].node, &p.communities[i].fig); err != nil {
			return err
		}
	}
	return ex.weekly(ctx, w)
}

// weekly writes the campaign's weeks (周进度): each week's figures as of
// its end, and the items found and closed off in it.
func (ex *exporter) weekly(ctx context.Context, w export.Writer) error {
	if ex.campaign == nil {
		return nil
	}
	weeks, err := ex.s.weeks(ctx, ex.node, ex.campaign.ID, ex.at)
	if err != nil {
		return err
	}
	header := ex.l.weekHeader()
	for _, q := range ex.campaign.Questions() {
		text := q.TextEN
		if ex.l.zh || text == "" {
			text = cmp.Or(q.TextZH, q.TextEN, q.Code)
		}
		header = append(header, text+ex.l.pick(" 正面率", " (positive)"))
	}
	if err := w.Sheet(ex.l.pick("周进度", "weeks"), header); err != nil {
		return err
	}
	for i, wk := range weeks {
		f := wk.GetTotal()
		row := []any{i + 1, officeDay(wk.GetFrom().AsTime()), officeDay(wk.GetUntil().AsTime().Add(-time.Millisecond)), int(f.GetHouseholds()), int(f.GetVisited()),
			percent(int(f.GetVisited()), int(f.GetHouseholds())), percent(int(f.GetKeyGroupVisited()), int(f.GetKeyGroupHouseholds())),
			percent(int(wk.GetQuotaVisited()), int(wk.GetQuotaTotal())), int(wk.GetItemsOpened()), int(wk.GetItemsClosed()), int(f.GetItemsOpen())}
		for _, q := range ex.campaign.Questions() {
			var rate any = ""
			for _, r := range f.GetSurvey() {
				if r.GetQuestion() == q.Code {
					rate = percent(int(r.GetPositive()), int(r.GetAnswered()))
				}
			}
			row = append(row, rate)
		}
		if err := w.Row(row...); err != nil {
			return err
		}
	}
	return nil
}

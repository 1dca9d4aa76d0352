package console

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/words"
	"github.com/doorbook/doorbook/syncengine"
)

// The household page's view of the API's answer: words and dates as an
// office reads them.
type (
	field struct{ Label, Value string }

	personView struct {
		Name, Relation, Gender, Birth, Phone, IDNumber, Residence, Categories string
	}

	amendmentView struct {
		Kind, Reason, Notes, Author string
		Void                        bool
	}

	visitView struct {
		At, Form, Visitor, Notes, Revisit string
		Findings, Materials               []string
		Others                            int // other households of a group visit
		Void, Corrected                   bool
		Amendments                        []amendmentView
	}

	itemView struct {
		VisitID, Kind, Note, State, Unit, CoUnits, Deadline, Reported string
		Finding                                                       uint32
		Open, Overdue                                                 bool
	}
)

// day formats a time as the date an office writes, in China's time.
func day(t time.Time) string { return t.In(syncengine.ChinaTime).Format("2006-01-02") }

// minute is day with the time of day.
func minute(t time.Time) string { return t.In(syncengine.ChinaTime).Format("2006-01-02 15:04") }

// household shows one household whole: its ledger, persons and
// categories, its open revisit and items, and every visit with every
// amendment, a voided one struck through.
func (c *Console) household(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	res, err := c.api.report.GetHousehold(ctx, &pb.GetHouseholdRequest{HouseholdId: r.PathValue("id")})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	zh := lang(r) == "zh"
	L := labels[lang(r)]
	workers := map[string]string{}
	if ws, err := c.api.admin.ListWorkers(ctx, &pb.ListWorkersRequest{}); err == nil {
		for _, wk := range ws.GetWorkers() {
			workers[wk.GetId()] = wk.GetName()
		}
	}
	catNames := map[string]string{}
	if cs, err := c.api.admin.ListCategories(ctx, &pb.ListCategoriesRequest{}); err == nil {
		for _, cat := range cs.GetCategories() {
			catNames[cat.GetCode()] = pick(zh, cat.GetNameZh().GetValue(), cat.GetNameEn().GetValue())
		}
	}
	h := res.GetHousehold()
	fields := []field{
		{L["head"], h.GetHeadName().GetValue()}, {L["address"], h.GetAddress().GetValue()},
		{L["grid"], res.GetGrid().GetName()}, {L["mobile"], h.GetPhoneMobile().GetValue()},
		{L["landline"], h.GetPhoneLandline().GetValue()}, {L["responsible_worker"], h.GetResponsibleWorker().GetValue()},
		{L["responsible_leader"], h.GetResponsibleLeader().GetValue()}, {L["responsible_unit"], h.GetResponsibleUnit().GetValue()},
		{L["members"], itoa(h.GetMemberCount().GetValue())}, {L["housing"], h.GetHousingType().GetValue()},
		{L["notes"], h.GetNotes().GetValue()},
	}
	var cats []string
	for _, t := range res.GetTags() {
		if !t.GetRemoved() && !slices.Contains(cats, t.GetCategoryCode()) {
			cats = append(cats, t.GetCategoryCode())
		}
	}
	var catLabels []string
	for _, code := range cats {
		if n := catNames[code]; n != "" {
			catLabels = append(catLabels, n)
		} else {
			catLabels = append(catLabels, code)
		}
	}
	var persons []personView
	for _, p := range res.GetPersons() {
		if p.GetDeleted().GetValue() {
			continue
		}
		// The categories put on this person (the household counts them).
		var own []string
		for _, t := range res.GetTags() {
			if t.GetPersonId() == p.GetId() && !t.GetRemoved() && !slices.Contains(own, cmp.Or(catNames[t.GetCategoryCode()], t.GetCategoryCode())) {
				own = append(own, cmp.Or(catNames[t.GetCategoryCode()], t.GetCategoryCode()))
			}
		}
		persons = append(persons, personView{Name: p.GetName().GetValue(), Relation: p.GetRelation().GetValue(),
			Gender: p.GetGender().GetValue(), Birth: p.GetBirthDate().GetValue(), Phone: p.GetPhone().GetValue(),
			IDNumber: maskID(p.GetIdNumber().GetValue()), Residence: words.Of(words.Residence, p.GetResidence().GetValue(), lang(r) == "zh"),
			Categories: strings.Join(own, "、")})
	}
	amendments := map[string][]*pb.VisitAmendment{}
	for _, a := range res.GetAmendments() {
		amendments[a.GetVisitId()] = append(amendments[a.GetVisitId()], a)
	}
	var visits []visitView
	for _, v := range res.GetVisits() {
		vv := visitView{At: minute(v.GetVisitedAt().AsTime()), Form: words.Of(words.Form, syncengine.VisitForm(v.GetForm()), zh),
			Visitor: workers[v.GetVisitorId()], Notes: v.GetNotes(), Others: len(v.GetHouseholdIds()) - 1}
		if vv.Visitor == "" {
			vv.Visitor = L["unknown_worker"]
		}
		if v.GetRevisitDue() != nil {
			vv.Revisit = day(v.GetRevisitDue().AsTime())
		}
		for _, f := range v.GetFindings() {
			vv.Findings = append(vv.Findings, joinNote(words.Of(words.Finding, syncengine.FindingKind(f.GetKind()), zh), f.GetNote()))
		}
		for _, m := range v.GetMaterials() {
			vv.Materials = append(vv.Materials, words.Of(words.Material, syncengine.Material(m), zh))
		}
		as := amendments[v.GetId()]
		slices.SortFunc(as, func(a, b *pb.VisitAmendment) int { return cmp.Compare(a.GetClock().GetHlc(), b.GetClock().GetHlc()) })
		for _, a := range as {
			kind := syncengine.AmendmentKind(a.GetKind())
			av := amendmentView{Kind: words.Of(words.Amendment, kind, zh), Reason: a.GetReason(), Author: workers[a.GetAuthorId()],
				Void: kind == syncengine.AmendVoid}
			if a.Notes != nil {
				av.Notes = a.GetNotes()
			}
			vv.Void = vv.Void || av.Void
			vv.Corrected = vv.Corrected || kind == syncengine.AmendCorrect
			vv.Amendments = append(vv.Amendments, av)
		}
		visits = append(visits, vv)
	}
	var items []itemView
	for _, it := range res.GetItems() {
		state := syncengine.ItemState(it.GetState())
		iv := itemView{VisitID: it.GetVisitId(), Finding: it.GetFinding(), Note: it.GetNote(), Unit: it.GetUnit(), CoUnits: strings.Join(it.GetCoUnits(), "、"),
			Kind: words.Of(words.Finding, syncengine.FindingKind(it.GetKind()), zh), State: words.Of(words.ItemState, state, zh),
			Reported: day(it.GetReportedAt().AsTime()), Open: state.Open()}
		if it.GetDeadline() != nil {
			iv.Deadline = day(it.GetDeadline().AsTime())
		}
		iv.Overdue = it.GetOverdue()
		items = append(items, iv)
	}
	data := map[string]any{
		"Head": h.GetHeadName().GetValue(), "Fields": fields, "Categories": catLabels,
		"Persons": persons, "Visits": visits, "Items": items,
	}
	if d := res.GetNextDue(); d != nil {
		data["NextDue"] = day(d.AsTime())
		data["PastDue"] = res.GetPastDue()
	}
	if d := res.GetRevisitDue(); d != nil {
		data["RevisitDue"] = day(d.AsTime())
	}
	c.render(w, r, http.StatusOK, "household", data)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func pick(zh bool, zhText, enText string) string {
	if zh || enText == "" {
		return zhText
	}
	return enText
}

func joinNote(kind, note string) string {
	if note == "" {
		return kind
	}
	return kind + "：" + note
}

// maskID shows an identity number's last four characters only: the page
// identifies the person without spreading the number.
func maskID(id string) string {
	r := []rune(id)
	if len(r) <= 4 {
		return id
	}
	out := make([]rune, len(r))
	for i := range r {
		out[i] = '*'
		if i >= len(r)-4 {
			out[i] = r[i]
		}
	}
	return string(out)
}

package console

import (
	"cmp"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/words"
	"github.com/doorbook/doorbook/syncengine"
)

// itemStates are the states the register filters by, by the name its
// form sends.
var itemStates = map[string]pb.ItemState{
	"reported": pb.ItemState_ITEM_STATE_REPORTED, "assigned": pb.ItemState_ITEM_STATE_ASSIGNED,
	"resolved": pb.ItemState_ITEM_STATE_RESOLVED, "closed": pb.ItemState_ITEM_STATE_CLOSED,
}

// itemUpdates are what the register's forms may do to an item.
var itemUpdates = map[string]pb.AmendmentKind{
	"assign": pb.AmendmentKind_AMENDMENT_KIND_ITEM_ASSIGN, "resolve": pb.AmendmentKind_AMENDMENT_KIND_ITEM_RESOLVE,
	"close": pb.AmendmentKind_AMENDMENT_KIND_ITEM_CLOSE,
}

type listedItemView struct {
	itemView
	HouseholdID, Head, Address string
	// Escalated names where the overdue item has gone up to.
	Escalated          string
	Assigned, Resolved bool
}

// items is the tracked items register (挂牌督办台账) of a node, filtered
// by state, unit and overdue, with a form on each open item to assign
// it, resolve it or close it off.
func (c *Console) items(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := &pb.ListItemsRequest{NodeId: q.Get("node"), Unit: q.Get("unit"), OverdueOnly: q.Get("overdue") == "1", Limit: 200}
	if st, ok := itemStates[q.Get("state")]; ok {
		req.States = []pb.ItemState{st}
	} else if q.Get("state") == "open" {
		req.States = []pb.ItemState{pb.ItemState_ITEM_STATE_REPORTED, pb.ItemState_ITEM_STATE_ASSIGNED}
	}
	res, err := c.api.report.ListItems(r.Context(), req)
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	zh := lang(r) == "zh"
	var items []listedItemView
	for _, li := range res.GetItems() {
		it := li.GetItem()
		state := syncengine.ItemState(it.GetState())
		v := listedItemView{itemView: itemView{VisitID: it.GetVisitId(), Finding: it.GetFinding(), Note: it.GetNote(),
			Unit: it.GetUnit(), CoUnits: strings.Join(it.GetCoUnits(), "、"), Kind: words.Of(words.Finding, syncengine.FindingKind(it.GetKind()), zh),
			State: words.Of(words.ItemState, state, zh), Reported: day(it.GetReportedAt().AsTime()), Open: state.Open(),
			Overdue: it.GetOverdue()},
			HouseholdID: li.GetHouseholdId(), Head: li.GetHeadName(), Address: li.GetAddress(),
			Assigned: state == syncengine.ItemAssigned, Resolved: state == syncengine.ItemResolved}
		if it.GetDeadline() != nil {
			v.Deadline = day(it.GetDeadline().AsTime())
		}
		if lv := int32(it.GetEscalatedTo()); lv != 0 {
			v.Escalated = cmp.Or(it.GetEscalatedToName(), words.Of(words.Level, lv, zh))
		}
		items = append(items, v)
	}
	c.render(w, r, http.StatusOK, "items", map[string]any{
		"Items": items, "Total": res.GetTotal(), "State": q.Get("state"), "Unit": q.Get("unit"),
		"Overdue": req.GetOverdueOnly(), "Node": q.Get("node"), "Back": r.URL.RequestURI(),
	})
}

// updateItem assigns, resolves or closes off an item, then returns to the
// page the form was on.
func (c *Console) updateItem(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	kind, ok := itemUpdates[f.Get("do")]
	finding, err := strconv.ParseUint(f.Get("finding"), 10, 32)
	if !ok || err != nil {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	req := &pb.UpdateItemRequest{VisitId: f.Get("visit"), Finding: uint32(finding), Kind: kind,
		Unit: strings.TrimSpace(f.Get("unit")), Note: strings.TrimSpace(f.Get("note"))}
	// Co-units as a clerk writes them: 、 or commas between.
	for _, u := range strings.FieldsFunc(f.Get("co_units"), func(r rune) bool { return strings.ContainsRune("、,，;；", r) }) {
		if u = strings.TrimSpace(u); u != "" {
			req.CoUnits = append(req.CoUnits, u)
		}
	}
	if d := f.Get("deadline"); d != "" {
		t, err := time.ParseInLocation("2006-01-02", d, syncengine.ChinaTime)
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, "bad request")
			return
		}
		// Due by the end of that day, in the offices' time.
		req.Deadline = timestamppb.New(t.AddDate(0, 0, 1).Add(-time.Second))
	}
	if _, err := c.api.admin.UpdateItem(r.Context(), req); err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, localPath(f.Get("back"), "/console/items"), http.StatusSeeOther)
}

// localPath is back if it is a path of the console, else def: a form's
// return address must not send the browser elsewhere.
func localPath(back, def string) string {
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/console/") ||
		strings.Contains(back, "//") || strings.Contains(back, `\`) {
		return def
	}
	return u.RequestURI()
}

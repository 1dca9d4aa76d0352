package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// The weekly chart's frame, in SVG units: rates run up from the bottom
// edge, weeks across.
const (
	chartLeft, chartRight = 48, 584
	chartTop, chartBottom = 16, 196
)

type weekView struct {
	N                         int
	From, Until               string
	Visited, Households       uint32
	Coverage, KeyGroup, Quota string
	Opened, Closed, Open      uint32
	X, CoverageY, KeyGroupY   int
}

// weeks shows a campaign's weeks on a node: a line chart of coverage and
// the key-group rate, each week as of its end, and a table with the quota
// attainment and the items found and closed off each week.
func (c *Console) weeks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	node, campaign := q.Get("node"), q.Get("campaign")
	res, err := c.api.report.GetProgress(r.Context(), &pb.GetProgressRequest{NodeId: node, CampaignId: campaign, Weekly: true})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	rep := res.GetReport()
	rate := func(n, d uint32) (string, float64) {
		if d == 0 {
			return "–", 0
		}
		f := float64(n) / float64(d)
		return fmt.Sprintf("%.1f%%", 100*f), f
	}
	y := func(f float64) int { return chartBottom - int(f*float64(chartBottom-chartTop)+0.5) }
	n := len(rep.GetWeeks())
	var weeks []weekView
	var coverage, keyGroup []string
	for i, wk := range rep.GetWeeks() {
		f := wk.GetTotal()
		v := weekView{N: i + 1, Visited: f.GetVisited(), Households: f.GetHouseholds(),
			From:   wk.GetFrom().AsTime().In(syncengine.ChinaTime).Format("01-02"),
			Until:  wk.GetUntil().AsTime().Add(-time.Millisecond).In(syncengine.ChinaTime).Format("01-02"),
			Opened: wk.GetItemsOpened(), Closed: wk.GetItemsClosed(), Open: f.GetItemsOpen(), X: chartLeft}
		if n > 1 {
			v.X = chartLeft + i*(chartRight-chartLeft)/(n-1)
		}
		var cf, kf float64
		v.Coverage, cf = rate(f.GetVisited(), f.GetHouseholds())
		v.KeyGroup, kf = rate(f.GetKeyGroupVisited(), f.GetKeyGroupHouseholds())
		v.Quota, _ = rate(wk.GetQuotaVisited(), wk.GetQuotaTotal())
		v.CoverageY, v.KeyGroupY = y(cf), y(kf)
		coverage = append(coverage, fmt.Sprintf("%d,%d", v.X, v.CoverageY))
		keyGroup = append(keyGroup, fmt.Sprintf("%d,%d", v.X, v.KeyGroupY))
		weeks = append(weeks, v)
	}
	name := rep.GetTotal().GetNode().GetName()
	c.render(w, r, http.StatusOK, "weeks", map[string]any{
		"Weeks": weeks, "Node": node, "Campaign": campaign, "NodeName": name, "CampaignName": rep.GetCampaign().GetName().GetValue(),
		"CoverageLine": strings.Join(coverage, " "), "KeyGroupLine": strings.Join(keyGroup, " "),
		"Left": chartLeft, "Right": chartRight, "Top": chartTop, "Bottom": chartBottom, "Middle": (chartTop + chartBottom) / 2,
	})
}

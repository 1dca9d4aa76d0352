package console

import (
	"net/http"
	"net/url"
	"strconv"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// metrics are the figures a dashboard number links to, by the name its
// link carries, with the label that titles their households' page.
var metrics = map[string]struct {
	metric pb.ReportMetric
	label  string
}{
	"not_visited":        {pb.ReportMetric_REPORT_METRIC_NOT_VISITED, "m_not_visited"},
	"visited":            {pb.ReportMetric_REPORT_METRIC_VISITED, "m_visited"},
	"key_group":          {pb.ReportMetric_REPORT_METRIC_KEY_GROUP_NOT_VISITED, "m_key_group"},
	"must_visit_overdue": {pb.ReportMetric_REPORT_METRIC_MUST_VISIT_OVERDUE, "must_visit_overdue"},
	"revisits_open":      {pb.ReportMetric_REPORT_METRIC_REVISITS_OPEN, "revisits"},
	"revisits_overdue":   {pb.ReportMetric_REPORT_METRIC_REVISITS_OVERDUE, "m_revisits_overdue"},
	"items_open":         {pb.ReportMetric_REPORT_METRIC_ITEMS_OPEN, "items"},
	"items_overdue":      {pb.ReportMetric_REPORT_METRIC_ITEMS_OVERDUE, "m_items_overdue"},
	"members_mismatch":   {pb.ReportMetric_REPORT_METRIC_MEMBERS_MISMATCH, "m_members_mismatch"},
}

// householdsPage is how many households a page lists.
const householdsPage = 100

// households lists the households behind a figure of the dashboard, a
// page at a time.
func (c *Console) households(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m, ok := metrics[q.Get("metric")]
	if !ok {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	offset, _ := strconv.ParseUint(q.Get("offset"), 10, 32)
	res, err := c.api.report.ListReportHouseholds(r.Context(), &pb.ListReportHouseholdsRequest{
		NodeId: q.Get("node"), CampaignId: q.Get("campaign"), Metric: m.metric,
		Limit: householdsPage, Offset: uint32(offset),
	})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	data := map[string]any{
		"Households": res.GetHouseholds(), "Total": res.GetTotal(),
		"Metric": m.label, "From": offset + 1, "To": offset + uint64(len(res.GetHouseholds())),
		"Back": "/console/?" + url.Values{"node": {q.Get("node")}, "campaign": {q.Get("campaign")}}.Encode(),
	}
	if next := offset + householdsPage; next < uint64(res.GetTotal()) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("offset", strconv.FormatUint(next, 10))
		data["Next"] = "/console/households?" + nq.Encode()
	}
	c.render(w, r, http.StatusOK, "households", data)
}

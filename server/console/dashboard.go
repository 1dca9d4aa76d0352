package console

import (
	"net/http"
	"slices"
	"strings"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// campaignOption is a campaign in the campaign picker.
type campaignOption struct {
	ID, Name, From, Until string
	Selected              bool
}

// nodeOption is a node of the caller's subtree in the node picker,
// indented by its depth.
type nodeOption struct {
	ID, Label string
	Selected  bool
}

// dashboard shows a node's progress in a campaign: the figures of the
// whole node, its communities ranked, and each person's quota. The node
// and campaign are picked from the caller's subtree and the campaigns it
// may read.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	nodes, err := c.api.admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	camps, err := c.api.admin.ListCampaigns(ctx, &pb.ListCampaignsRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	q := r.URL.Query()
	node, campaign := q.Get("node"), q.Get("campaign")
	var campaigns []campaignOption
	for _, c := range camps.GetCampaigns() {
		if c.GetDeleted().GetValue() {
			continue
		}
		from, until := campaignDays(c)
		campaigns = append(campaigns, campaignOption{ID: c.GetId(), Name: c.GetName().GetValue(), From: from, Until: until})
	}
	// The latest campaign, if none is picked: the one an office works on.
	slices.SortFunc(campaigns, func(a, b campaignOption) int { return strings.Compare(b.From, a.From) })
	if campaign == "" && len(campaigns) > 0 {
		campaign = campaigns[0].ID
	}
	for i := range campaigns {
		campaigns[i].Selected = campaigns[i].ID == campaign
	}
	data := map[string]any{
		"Nodes":     nodeOptions(nodes.GetNodes(), node),
		"Campaigns": campaigns,
		"Campaign":  campaign,
		"Node":      node,
	}
	if campaign != "" {
		res, err := c.api.report.GetProgress(ctx, &pb.GetProgressRequest{NodeId: node, CampaignId: campaign})
		if err != nil {
			c.apiError(w, r, err)
			return
		}
		rep := res.GetReport()
		data["Report"] = rep
		data["At"] = rep.GetAt().AsTime().In(syncengine.ChinaTime).Format("2006-01-02 15:04")
		var most uint32
		for _, f := range rep.GetCommunities() {
			most = max(most, f.GetHouseholds())
		}
		data["MostHouseholds"] = most
		// The campaign's ranking: a score column when it weighs, and what
		// each rank brings when it has bands (community / link cadre).
		data["Weighed"] = len(rep.GetRanking().GetWeights()) > 0
		data["Ranked"] = data["Weighed"] == true || len(rep.GetRanking().GetBands()) > 0
	}
	c.render(w, r, http.StatusOK, "dashboard", data)
}

// nodeOptions orders nodes as a tree (each after its parent, by name)
// and labels each with its depth.
func nodeOptions(nodes []*pb.OrgNode, selected string) []nodeOption {
	var out []nodeOption
	for _, n := range orgTree(nodes, true) {
		out = append(out, nodeOption{ID: n.ID, Label: strings.Repeat("\u3000", n.Depth) + n.Name, Selected: n.ID == selected})
	}
	return out
}

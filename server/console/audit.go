package console

import (
	"net/http"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

type auditView struct {
	At, Admin, Action, Node, Campaign string
}

// audit shows who read which report, export or household, newest first:
// the audit log of the admin's subtree.
func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	res, err := c.api.report.ListAuditLog(ctx, &pb.ListAuditLogRequest{Limit: 500})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	nodes := map[string]string{}
	if ns, err := c.api.admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{}); err == nil {
		for _, n := range ns.GetNodes() {
			nodes[n.GetId()] = n.GetName()
		}
	}
	camps := map[string]string{}
	if cs, err := c.api.admin.ListCampaigns(ctx, &pb.ListCampaignsRequest{}); err == nil {
		for _, cp := range cs.GetCampaigns() {
			camps[cp.GetId()] = cp.GetName().GetValue()
		}
	}
	var entries []auditView
	for _, e := range res.GetEntries() {
		v := auditView{At: minute(e.GetAt().AsTime()), Admin: e.GetAdminName(), Action: e.GetAction(),
			Node: nodes[e.GetNodeId()], Campaign: camps[e.GetCampaignId()]}
		if v.Node == "" {
			v.Node = e.GetNodeId()
		}
		if v.Campaign == "" {
			v.Campaign = e.GetCampaignId()
		}
		entries = append(entries, v)
	}
	c.render(w, r, http.StatusOK, "audit", map[string]any{"Entries": entries})
}

package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/words"
	"github.com/doorbook/doorbook/syncengine"
)

// treeNode is a node of the org tree as the configuration page lists it:
// in tree order, indented by depth.
type treeNode struct {
	ID, Name, Level string
	Depth           int
}

type categoryView struct {
	Code, NameZh, NameEn, Parent, RevisitDays string
	KeyGroup, Deleted                         bool
}

type campaignView struct {
	ID, Name, Node, From, Until string
	Quotas                      []string
	Questions                   int
}

// config shows what an office sets up: its org tree, the must-visit
// categories and the campaigns, each with the forms the caller may use.
func (c *Console) config(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	nodes, err := c.api.admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	cats, err := c.api.admin.ListCategories(ctx, &pb.ListCategoriesRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	camps, err := c.api.admin.ListCampaigns(ctx, &pb.ListCampaignsRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	items, err := c.api.admin.GetItemPolicy(ctx, &pb.GetItemPolicyRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	policy, err := c.api.admin.GetDevicePolicy(ctx, &pb.GetDevicePolicyRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	zh := lang(r) == "zh"
	tree := orgTree(nodes.GetNodes(), zh)
	names := map[string]string{}
	for _, n := range nodes.GetNodes() {
		names[n.GetId()] = n.GetName()
	}
	var categories []categoryView
	for _, k := range cats.GetCategories() {
		v := categoryView{Code: k.GetCode(), NameZh: k.GetNameZh().GetValue(), NameEn: k.GetNameEn().GetValue(),
			Parent: k.GetParentCode().GetValue(), KeyGroup: k.GetKeyGroup().GetValue(), Deleted: k.GetDeleted().GetValue()}
		if d := k.GetRevisitDays().GetValue(); d > 0 {
			v.RevisitDays = strconv.FormatInt(d, 10)
		}
		categories = append(categories, v)
	}
	slices.SortFunc(categories, func(a, b categoryView) int { return strings.Compare(a.Code, b.Code) })
	var campaigns []campaignView
	for _, k := range camps.GetCampaigns() {
		if k.GetDeleted().GetValue() {
			continue
		}
		from, until := campaignDays(k)
		v := campaignView{ID: k.GetId(), Name: k.GetName().GetValue(), Node: names[k.GetNodeId().GetValue()],
			From: from, Until: until, Questions: len(k.GetQuestionnaire().GetQuestions())}
		if v.Node == "" {
			v.Node = k.GetNodeId().GetValue() // a node above the caller's
		}
		for _, q := range k.GetQuotas().GetQuotas() {
			v.Quotas = append(v.Quotas, words.Of(words.Role, int32(q.GetRole()), zh)+" "+strconv.FormatUint(uint64(q.GetHouseholds()), 10))
		}
		campaigns = append(campaigns, v)
	}
	slices.SortFunc(campaigns, func(a, b campaignView) int { return strings.Compare(b.From, a.From) })
	c.render(w, r, http.StatusOK, "config", map[string]any{
		"Tree": tree, "Levels": options(words.Level, zh), "Categories": categories, "Campaigns": campaigns,
		"Policy": policy.GetPolicy(), "ItemPolicy": items.GetPolicy(),
	})
}

// setPolicy sets the installation's lost-phone policy.
func (c *Console) setPolicy(w http.ResponseWriter, r *http.Request) {
	days := func(k string) (uint32, bool) {
		v := strings.TrimSpace(r.PostForm.Get(k))
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseUint(v, 10, 32)
		return uint32(n), err == nil
	}
	lock, ok1 := days("lock_days")
	wipe, ok2 := days("wipe_days")
	if !ok1 || !ok2 {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	_, err := c.api.admin.SetDevicePolicy(r.Context(), &pb.SetDevicePolicyRequest{Policy: &pb.DevicePolicy{LockAfterDays: lock, WipeAfterDays: wipe}})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/config#policy", http.StatusSeeOther)
}

// setItemPolicy sets after how many days an overdue item goes up a level.
func (c *Console) setItemPolicy(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseUint(strings.TrimSpace(r.PostForm.Get("escalation_days")), 10, 32)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	_, err = c.api.admin.SetItemPolicy(r.Context(), &pb.SetItemPolicyRequest{Policy: &pb.ItemPolicy{EscalationDays: uint32(n)}})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/config#item-policy", http.StatusSeeOther)
}

// option is a value of a select.
type option struct {
	Value int32
	Label string
}

// options lists the named values of an enum, in order.
func options(m map[int32][2]string, zh bool) []option {
	var out []option
	for v := range m {
		if v != 0 {
			out = append(out, option{Value: v, Label: words.Of(m, v, zh)})
		}
	}
	slices.SortFunc(out, func(a, b option) int { return int(a.Value - b.Value) })
	return out
}

// orgTree puts nodes in tree order (each node after its parent, siblings
// by name). Nodes whose parent the caller cannot see are roots.
func orgTree(nodes []*pb.OrgNode, zh bool) []treeNode {
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.GetId()] = true
	}
	children := map[string][]*pb.OrgNode{}
	for _, n := range nodes {
		parent := n.GetParentId()
		if !seen[parent] {
			parent = ""
		}
		children[parent] = append(children[parent], n)
	}
	var out []treeNode
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		kids := children[parent]
		slices.SortFunc(kids, func(a, b *pb.OrgNode) int { return strings.Compare(a.GetName(), b.GetName()) })
		for _, n := range kids {
			out = append(out, treeNode{ID: n.GetId(), Name: n.GetName(), Level: words.Of(words.Level, int32(n.GetLevel()), zh), Depth: depth})
			walk(n.GetId(), depth+1)
		}
	}
	walk("", 0)
	return out
}

// campaignDays are a campaign's first and last days in the offices' time
// (its end is exclusive: the last day is the one before).
func campaignDays(k *pb.Campaign) (from, until string) {
	if k.GetStartsAt() != nil {
		from = time.UnixMilli(k.GetStartsAt().GetValue()).In(syncengine.ChinaTime).Format("2006-01-02")
	}
	if k.GetEndsAt() != nil {
		until = time.UnixMilli(k.GetEndsAt().GetValue()).In(syncengine.ChinaTime).Add(-time.Millisecond).Format("2006-01-02")
	}
	return from, until
}

// createNode adds a node to the org tree.
func (c *Console) createNode(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	level, err := strconv.ParseInt(f.Get("level"), 10, 32)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	_, err = c.api.admin.CreateOrgNode(r.Context(), &pb.CreateOrgNodeRequest{ParentId: f.Get("parent"),
		Level: pb.OrgLevel(level), Name: strings.TrimSpace(f.Get("name"))})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/config#org", http.StatusSeeOther)
}

// putCategory adds or changes a must-visit category, deletes one, or
// loads the default ones.
func (c *Console) putCategory(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	var err error
	switch f.Get("do") {
	case "defaults":
		_, err = c.api.admin.LoadDefaultCategories(r.Context(), &pb.LoadDefaultCategoriesRequest{})
	case "delete":
		_, err = c.api.admin.PutCategory(r.Context(), &pb.PutCategoryRequest{Code: f.Get("code"), Deleted: proto.Bool(true)})
	case "put":
		req := &pb.PutCategoryRequest{Code: strings.TrimSpace(f.Get("code")),
			NameZh: proto.String(strings.TrimSpace(f.Get("name_zh"))), NameEn: proto.String(strings.TrimSpace(f.Get("name_en"))),
			ParentCode: proto.String(f.Get("parent")), KeyGroup: proto.Bool(f.Get("key_group") == "1"), Deleted: proto.Bool(false)}
		days := int64(0)
		if d := strings.TrimSpace(f.Get("revisit_days")); d != "" {
			if days, err = strconv.ParseInt(d, 10, 64); err != nil {
				c.fail(w, r, http.StatusBadRequest, "bad request")
				return
			}
		}
		req.RevisitDays = proto.Int64(days)
		_, err = c.api.admin.PutCategory(r.Context(), req)
	default:
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/config#categories", http.StatusSeeOther)
}

// questionRow is a row of the questionnaire's form.
type questionRow struct {
	Code, TextZh, TextEn, Scale, PositiveFrom string
}

// blankQuestions is how many empty rows the questionnaire's form offers
// for new questions.
const blankQuestions = 3

// campaign shows one campaign's form: its name, node, days, the quota of
// each role and the questionnaire. Without an id, a new campaign's.
func (c *Console) campaign(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	nodes, err := c.api.admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	zh := lang(r) == "zh"
	id := r.URL.Query().Get("id")
	var k *pb.Campaign
	if id != "" {
		camps, err := c.api.admin.ListCampaigns(ctx, &pb.ListCampaignsRequest{})
		if err != nil {
			c.apiError(w, r, err)
			return
		}
		for _, x := range camps.GetCampaigns() {
			if x.GetId() == id && !x.GetDeleted().GetValue() {
				k = x
			}
		}
		if k == nil {
			c.fail(w, r, http.StatusNotFound, "bad request")
			return
		}
	}
	quotas := map[int32]uint32{}
	var questions []questionRow
	for _, q := range k.GetQuotas().GetQuotas() {
		quotas[int32(q.GetRole())] = q.GetHouseholds()
	}
	for _, q := range k.GetQuestionnaire().GetQuestions() {
		questions = append(questions, questionRow{Code: q.GetCode(), TextZh: q.GetTextZh(), TextEn: q.GetTextEn(),
			Scale: strconv.FormatUint(uint64(q.GetScale()), 10), PositiveFrom: strconv.FormatUint(uint64(q.GetPositiveFrom()), 10)})
	}
	for range blankQuestions {
		questions = append(questions, questionRow{})
	}
	type quotaRow struct {
		Role  int32
		Label string
		Value string
	}
	var quotaRows []quotaRow
	for _, o := range options(words.Role, zh) {
		v := ""
		if n, ok := quotas[o.Value]; ok {
			v = strconv.FormatUint(uint64(n), 10)
		}
		quotaRows = append(quotaRows, quotaRow{Role: o.Value, Label: o.Label, Value: v})
	}
	from, until := campaignDays(k)
	tree := nodeOptions(nodes.GetNodes(), k.GetNodeId().GetValue())
	// A campaign of a node above the caller's is theirs to read, not to
	// change: its node is not in their tree.
	own := k == nil || slices.ContainsFunc(tree, func(n nodeOption) bool { return n.Selected })
	c.render(w, r, http.StatusOK, "campaign", map[string]any{
		"ID": id, "Name": k.GetName().GetValue(), "From": from, "Until": until, "Nodes": tree,
		"Quotas": quotaRows, "Questions": questions, "Editable": own && sessionOf(r).may["PutCampaign"],
	})
}

// putCampaign saves the campaign form whole (quotas and questionnaire
// included), or deletes the campaign.
func (c *Console) putCampaign(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	req := &pb.PutCampaignRequest{Id: f.Get("id")}
	if f.Get("do") == "delete" {
		req.Deleted = proto.Bool(true)
	} else if !campaignForm(f, req) {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	if _, err := c.api.admin.PutCampaign(r.Context(), req); err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/config#campaigns", http.StatusSeeOther)
}

// campaignForm fills req from the campaign form; false if a field does
// not parse. What the values may be is the API's to say.
func campaignForm(f map[string][]string, req *pb.PutCampaignRequest) bool {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	req.NodeId, req.Name = proto.String(get("node")), proto.String(get("name"))
	from, err1 := time.ParseInLocation("2006-01-02", get("from"), syncengine.ChinaTime)
	until, err2 := time.ParseInLocation("2006-01-02", get("until"), syncengine.ChinaTime)
	if err1 != nil || err2 != nil {
		return false
	}
	// The last day counts whole: the window ends at the next midnight.
	req.StartsAt, req.EndsAt = timestamppb.New(from), timestamppb.New(until.AddDate(0, 0, 1))
	req.SetQuotas, req.SetQuestionnaire = true, true
	for role := range words.Role {
		v := get("quota_" + strconv.Itoa(int(role)))
		if role == 0 || v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return false
		}
		req.Quotas = append(req.Quotas, &pb.Quota{Role: pb.WorkerRole(role), Households: uint32(n)})
	}
	slices.SortFunc(req.Quotas, func(a, b *pb.Quota) int { return int(a.GetRole() - b.GetRole()) })
	codes, zhs, ens, scales, froms := f["q_code"], f["q_zh"], f["q_en"], f["q_scale"], f["q_from"]
	if len(zhs) != len(codes) || len(ens) != len(codes) || len(scales) != len(codes) || len(froms) != len(codes) {
		return false
	}
	for i, code := range codes {
		if code = strings.TrimSpace(code); code == "" {
			continue // a blank row
		}
		scale, err1 := strconv.ParseUint(strings.TrimSpace(scales[i]), 10, 32)
		pos, err2 := strconv.ParseUint(strings.TrimSpace(froms[i]), 10, 32)
		if err1 != nil || err2 != nil {
			return false
		}
		req.Questions = append(req.Questions, &pb.Question{Code: code, TextZh: strings.TrimSpace(zhs[i]),
			TextEn: strings.TrimSpace(ens[i]), Scale: uint32(scale), PositiveFrom: uint32(pos)})
	}
	return true
}

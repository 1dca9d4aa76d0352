package authz_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// The tree of the matrix: district D with streets S1 and S2; grid G1 in
// community C1 of S1.
var (
	district  = []string{"D"}
	street1   = []string{"S1", "D"}
	street2   = []string{"S2", "D"}
	grid1     = []string{"G1", "C1", "S1", "D"}
	district2 = []string{"D2"}
)

var resources = []struct {
	name string
	r    authz.Resource
}{
	{"anywhere", authz.Anywhere},
	{"installation", authz.Installation},
	{"district", authz.Node(district)},
	{"street1", authz.Node(street1)},
	{"street2", authz.Node(street2)},
	{"grid1", authz.Node(grid1)},
	{"district2", authz.Node(district2)},
}

var principals = []struct {
	name string
	p    store.Principal
}{
	{"nobody", store.Principal{}},
	{"worker", store.Principal{Kind: store.KindWorker, ID: "w"}},
	{"root", store.Principal{Kind: store.KindAdmin, ID: "root"}},
	{"root leader", store.Principal{Kind: store.KindAdmin, ID: "rl", ReadOnly: true}},
	{"district admin", store.Principal{Kind: store.KindAdmin, ID: "da", Node: "D", Path: district}},
	{"street1 admin", store.Principal{Kind: store.KindAdmin, ID: "sa", Node: "S1", Path: street1}},
	{"street1 leader", store.Principal{Kind: store.KindAdmin, ID: "sl", Node: "S1", Path: street1, ReadOnly: true}},
}

// allowed is the whole matrix: for each principal and action, the
// resources (by name) on which Decide says yes. Every other cell is no.
var allowed = map[string]map[authz.Action]string{
	"nobody": {},
	// Which visits' files a worker's device reads is the sync rules' scope.
	"worker": {authz.Sync: "*", authz.ReadAttachment: "*"},
	"root": {
		authz.ReadOrg: "*", authz.ReadCampaign: "*", authz.ReadReport: "*", authz.ManageOrg: "*", authz.ManageDevices: "*",
		authz.AddAdmin: "*", authz.DefineCategory: "*", authz.ManageCampaign: "*", authz.UpdateItem: "*", authz.Erase: "*",
		authz.OwnSession: "*", authz.SetPolicy: "*", authz.ReadAttachment: "*",
	},
	// A leader signs out: that changes nothing but its own session.
	"root leader": {authz.ReadOrg: "*", authz.ReadCampaign: "*", authz.ReadReport: "*", authz.OwnSession: "*", authz.ReadAttachment: "*"},
	"district admin": {
		authz.ReadOrg: "D", authz.ReadCampaign: "D", authz.ReadReport: "D", authz.ManageOrg: "D", authz.ManageDevices: "D",
		authz.AddAdmin: "D", authz.ManageCampaign: "D", authz.UpdateItem: "D", authz.Erase: "D", authz.OwnSession: "D",
		authz.SetPolicy: "D", authz.ReadAttachment: "D",
		// A district admin defines the categories, for every tree.
		authz.DefineCategory: "*",
	},
	"street1 admin": {
		authz.ReadOrg: "S1", authz.ReadReport: "S1", authz.ManageOrg: "S1", authz.ManageDevices: "S1",
		authz.AddAdmin: "S1", authz.ManageCampaign: "S1", authz.UpdateItem: "S1", authz.Erase: "S1", authz.OwnSession: "S1",
		authz.SetPolicy: "S1", authz.ReadAttachment: "S1",
		// Campaigns of the district above apply to the street.
		authz.ReadCampaign:   "anywhere district street1 grid1",
		authz.DefineCategory: "anywhere",
	},
	"street1 leader": {authz.ReadOrg: "S1", authz.ReadReport: "S1", authz.ReadCampaign: "anywhere district street1 grid1", authz.OwnSession: "S1",
		authz.ReadAttachment: "S1"},
}

// expand turns the shorthand of allowed into resource names: "*" is every
// resource, "D" the district's subtree, "S1" street 1's; "anywhere" is
// always there for an action allowed at all.
func expand(s string) map[string]bool {
	out := map[string]bool{}
	switch s {
	case "*":
		for _, r := range resources {
			out[r.name] = true
		}
	case "D":
		s = "anywhere district street1 street2 grid1"
	case "S1":
		s = "anywhere street1 grid1"
	}
	for _, f := range strings.Fields(s) {
		out[f] = true
	}
	return out
}

// TestMatrix asks Decide every cell of principals × actions × resources.
func TestMatrix(t *testing.T) {
	for _, pr := range principals {
		for _, a := range authz.Actions() {
			want := expand(allowed[pr.name][a])
			for _, r := range resources {
				err := authz.Decide(pr.p, a, r.r)
				if (err == nil) != want[r.name] {
					t.Errorf("%s may %s on %s: got %v, want allowed=%v", pr.name, a, r.name, err, want[r.name])
				}
				if err != nil && !errors.Is(err, syncengine.ErrOutOfScope) && !errors.Is(err, syncengine.ErrUnauthenticated) {
					t.Errorf("%s %s on %s: %v wraps neither ErrOutOfScope nor ErrUnauthenticated", pr.name, a, r.name, err)
				}
			}
		}
	}
}

// TestReasons: a refusal says why, once.
func TestReasons(t *testing.T) {
	for _, c := range []struct {
		p    store.Principal
		a    authz.Action
		r    authz.Resource
		want string
	}{
		{principals[1].p, authz.ReadReport, authz.Anywhere, "admins only"},
		{principals[2].p, authz.Sync, authz.Anywhere, "sync is for workers' devices"},
		{principals[6].p, authz.ManageOrg, authz.Anywhere, "a leader's token may only read"},
		{principals[5].p, authz.ManageOrg, authz.Node(street2), "org node S2 is outside your subtree"},
		{principals[5].p, authz.ManageOrg, authz.Installation, "only an installation-wide admin may manage the org tree for every tree"},
		{principals[5].p, authz.DefineCategory, authz.Installation, "categories are defined by district admins"},
	} {
		err := authz.Decide(c.p, c.a, c.r)
		if err == nil || !strings.HasSuffix(err.Error(), c.want) || strings.Count(err.Error(), "out of scope") > 1 {
			t.Errorf("Decide(%s, %s) = %v; want an error ending %q", c.p.ID, c.a, err, c.want)
		}
	}
}

func ExampleDecide() {
	leader := store.Principal{Kind: store.KindAdmin, ID: "sl", Node: "S1", Path: []string{"S1", "D"}, ReadOnly: true}
	fmt.Println(authz.Decide(leader, authz.ReadReport, authz.Node([]string{"G1", "C1", "S1", "D"})))
	fmt.Println(authz.Decide(leader, authz.UpdateItem, authz.Node([]string{"G1", "C1", "S1", "D"})))
	// Output:
	// <nil>
	// out of scope: a leader's token may only read
}

// TestHome: what a console offers each principal at its own node.
func TestHome(t *testing.T) {
	t.Parallel()
	reads := "read the org tree, read campaigns, read reports"
	writes := "manage the org tree, manage devices, add admins, manage campaigns, update items, erase personal data"
	all := strings.Replace(writes, "manage campaigns", "define categories, manage campaigns", 1)
	own := ", read or end one's own session"
	files := ", read visits' files"
	want := map[string]string{
		"nobody":         "",
		"worker":         "sync" + files,
		"root":           reads + ", " + all + own + ", set the lost-phone policy" + files,
		"root leader":    reads + own + files,
		"district admin": reads + ", " + all + own + files,
		"street1 admin":  reads + ", " + writes + own + files,
		"street1 leader": reads + own + files,
	}
	for _, pr := range principals {
		var got []string
		for _, a := range authz.Home(pr.p) {
			got = append(got, a.String())
		}
		if g := strings.Join(got, ", "); g != want[pr.name] {
			t.Errorf("%s: home offers %q,\nwant %q", pr.name, g, want[pr.name])
		}
	}
}

// Package demo seeds a server's store with the demo district that
// `doorbook serve --demo` starts with: the org tree, workers with enrolment
// codes, the households internal/demo generates, the default categories and
// a running campaign, all written through store.Store as an admin would.
// The data itself (deterministic for a seed) comes from internal/demo, which
// knows nothing of the server.
package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	demodata "github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// SeededWorker is a demo worker with an enrolment code.
type SeededWorker struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	GridIDs        []string `json:"grid_ids"`
	EnrollmentCode string   `json:"enrollment_code"`
}

// Seeded is what Seed created.
type Seeded struct {
	DistrictID string
	Workers    []SeededWorker
	Households int
	CampaignID string
}

// Roles of the demo workers; the numbers are the API's WorkerRole.
const (
	roleGridWorker      = 1
	roleCommunityWorker = 2
	rolePolice          = 4
)

// Seed creates the demo district through st, as admin: one street, three
// communities of four grids each, 250 households per grid with persons and
// tags, and six workers — two of whom share a grid — each with an enrolment
// code valid for codeTTL.
func Seed(ctx context.Context, st store.Store, admin store.Principal, seed uint64, now time.Time, codeTTL time.Duration) (Seeded, error) {
	var out Seeded
	mk := func(parent string, level store.OrgLevel, name string) (string, error) {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: name})
		return n.ID, err
	}
	district, err := mk("", store.LevelDistrict, "芙蓉区 Furong District")
	if err != nil {
		return out, fmt.Errorf("seed: %w", err)
	}
	out.DistrictID = district
	street, err := mk(district, store.LevelStreet, "东风街道 Dongfeng Street")
	if err != nil {
		return out, fmt.Errorf("seed: %w", err)
	}
	var grids []string
	for _, c := range []struct{ zh, en string }{{"东风社区", "Dongfeng"}, {"和平社区", "Heping"}, {"幸福社区", "Xingfu"}} {
		community, err := mk(street, store.LevelCommunity, c.zh+" "+c.en+" Community")
		if err != nil {
			return out, fmt.Errorf("seed: %w", err)
		}
		for i := 1; i <= 4; i++ {
			g, err := mk(community, store.LevelGrid, fmt.Sprintf("%s第%d网格 %s grid %d", c.zh, i, c.en, i))
			if err != nil {
				return out, fmt.Errorf("seed: %w", err)
			}
			grids = append(grids, g)
		}
	}
	workers := []struct {
		name  string
		role  int32
		grids []string
	}{
		{"李娜 Li Na", roleGridWorker, grids[0:2]},
		{"王强 Wang Qiang", roleGridWorker, grids[1:3]}, // shares grid 2 with Li Na
		{"张敏 Zhang Min", roleGridWorker, grids[3:4]},
		{"刘洋 Liu Yang", roleGridWorker, grids[4:8]},
		{"陈静 Chen Jing", roleCommunityWorker, grids[8:12]},
		{"赵磊 Zhao Lei", rolePolice, grids[0:4]},
	}
	responsible := map[string]string{}
	for _, w := range workers {
		created, err := st.CreateWorker(ctx, admin, store.Worker{Name: w.name, Role: w.role, GridIDs: w.grids})
		if err != nil {
			return out, fmt.Errorf("seed: %w", err)
		}
		code, err := st.CreateEnrollmentCode(ctx, admin, created.ID, now.Add(codeTTL))
		if err != nil {
			return out, fmt.Errorf("seed: %w", err)
		}
		out.Workers = append(out.Workers, SeededWorker{ID: created.ID, Name: w.name, GridIDs: w.grids, EnrollmentCode: code})
		for _, g := range w.grids {
			if _, ok := responsible[g]; !ok {
				responsible[g] = w.name
			}
		}
	}
	gen := demodata.NewGenerator(seed, now)
	for _, g := range grids {
		b := gen.Grid(g, demodata.DefaultShape, responsible[g], "")
		if err := st.Import(ctx, admin, b); err != nil {
			return out, fmt.Errorf("seed: %w", err)
		}
		out.Households += len(b.Households)
	}
	for _, c := range fieldwork.DefaultCategorySet(gen.Clock) {
		if _, _, err := st.PutCategory(ctx, admin, c, true); err != nil {
			return out, fmt.Errorf("seed: %w", err)
		}
	}
	// A campaign running now, over the street.
	survey, err := syncengine.EncodeQuestionnaire(fieldwork.StandardSurvey)
	if err != nil {
		return out, fmt.Errorf("seed: %w", err)
	}
	clock := gen.Clock()
	campaign, err := st.PutCampaign(ctx, admin, syncengine.Campaign{
		ID:       gen.ID(),
		NodeID:   syncengine.NewRegister(street, clock),
		Name:     syncengine.NewRegister("平安家园大走访 Safe Homes visiting campaign", clock),
		StartsAt: syncengine.NewRegister(now.AddDate(0, 0, -30).UnixMilli(), clock),
		EndsAt:   syncengine.NewRegister(now.AddDate(0, 0, 30).UnixMilli(), clock),
		Quotas: syncengine.NewRegister(syncengine.EncodeQuotas(map[int32]uint32{
			roleGridWorker: 200, roleCommunityWorker: 20, rolePolice: 20,
		}), clock),
		Questionnaire: syncengine.NewRegister(survey, clock),
	})
	if err != nil {
		return out, fmt.Errorf("seed: %w", err)
	}
	out.CampaignID = campaign.ID
	return out, nil
}

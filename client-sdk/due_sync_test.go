package sdk_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

// TestDueFollowsSyncs: a phone's due list and analysis after a sync, which
// read again only the households the pull wrote, are those read whole,
// after each of
// a random run of another phone's writes (visits, voids, corrections,
// items, tags added and removed, ledger edits, persons, households
// registered and deleted) and some of its own.
func TestDueFollowsSyncs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, grid := twoPhones(t)
	now := time.Now()
	rng := rand.New(rand.NewPCG(20261204, 2))
	var households, visits, hazards []string
	register := func(r interface {
		RegisterHousehold(context.Context, string, map[string]string) (string, error)
	}) {
		id, err := r.RegisterHousehold(ctx, grid, map[string]string{"head_name": "户主", "address": "和平路"})
		if err != nil {
			t.Fatal(err)
		}
		households = append(households, id)
	}
	for range 6 {
		register(a)
	}
	syncAll(t, a, b)
	for step := range 40 {
		writer := a
		if rng.IntN(5) == 0 {
			writer = b
		}
		h := households[rng.IntN(len(households))]
		var did string
		var err error
		switch k := rng.IntN(12); {
		case k < 4 || len(visits) == 0:
			in := sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, VisitedAt: now.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)}
			switch rng.IntN(3) {
			case 0:
				in.RevisitReasons = []syncengine.RevisitReason{syncengine.RevisitUnstableMood}
			case 1:
				in.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "堆物"}}
			}
			var id string
			if id, err = writer.RecordVisit(ctx, in); err == nil {
				visits = append(visits, id)
				if len(in.Findings) > 0 {
					hazards = append(hazards, id)
				}
			}
			did = "visit"
		case k < 5:
			_, err = writer.VoidVisit(ctx, visits[rng.IntN(len(visits))], "wrong door")
			did = "void"
		case k < 6:
			_, err = writer.AmendVisit(ctx, visits[rng.IntN(len(visits))], "wrong day", sdk.Correction{VisitedAt: now.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)})
			did = "correct"
		case k < 7 && len(hazards) > 0:
			_, err = writer.UpdateItem(ctx, hazards[rng.IntN(len(hazards))], 0, syncengine.AmendItemAssign, "", "消防站", now.AddDate(0, 0, rng.IntN(20)-10))
			did = "assign"
		case k < 8:
			err = writer.AddTag(ctx, h, "petitioner")
			did = "tag"
		case k < 9:
			did = "untag"
			if err = writer.RemoveTag(ctx, h, "petitioner"); errors.Is(err, syncengine.ErrNotFound) {
				err, did = nil, "untag (none there)"
			}
		case k < 10:
			_, err = writer.AddPerson(ctx, h, map[string]string{"name": "家人"})
			did = "person"
		case k < 11:
			err = writer.EditHousehold(ctx, h, map[string]string{"address": "胜利路"})
			did = "edit"
		default:
			if rng.IntN(2) == 0 || len(households) < 3 {
				register(writer)
				did = "register"
			} else {
				err = writer.DeleteHousehold(ctx, h)
				households = slices.DeleteFunc(households, func(id string) bool { return id == h })
				did = "delete"
			}
		}
		if err != nil {
			t.Fatalf("step %d (%s): %v", step, did, err)
		}
		// b keeps an analysis from before the sync, then syncs.
		if _, err := b.Due(ctx, "", now); err != nil {
			t.Fatal(err)
		}
		before := sdk.Writes(b)
		syncAll(t, a, b)
		// Every write of b since named its households: the due list
		// read only those again.
		if _, ok := sdk.ChangedSince(b, before); !ok {
			t.Fatalf("step %d (%s): a write of b's syncs did not name the households it changed", step, did)
		}
		kept, err := b.Due(ctx, "", now)
		if err != nil {
			t.Fatal(err)
		}
		shared, err := sdk.SharedAnalysis(ctx, b, now)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := b.Analyze(ctx, "", now)
		if err != nil {
			t.Fatal(err)
		}
		if want := whole.Due(now); !reflect.DeepEqual(kept, want) {
			t.Fatalf("after step %d (%s by %s) and a sync, the due list kept differs from one read whole:\n%+v\n%+v", step, did, writer.Path(), kept, want)
		}
		if !reflect.DeepEqual(shared.Analysis, whole.Analysis) {
			t.Fatalf("after step %d (%s by %s) and a sync, the analysis kept differs from one read whole:\n%+v\n%+v", step, did, writer.Path(),
				shared.Figures(now, nil), whole.Figures(now, nil))
		}
	}
}

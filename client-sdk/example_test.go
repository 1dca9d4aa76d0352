package sdk_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// exampleServer starts a server with one grid and a worker, and returns its
// URL, the grid and an enrolment code.
func exampleServer(ctx context.Context, dir string) (url, grid, code string, stop func()) {
	backend, err := sqlite.Open(ctx, filepath.Join(dir, "server.db"))
	if err != nil {
		log.Fatal(err)
	}
	st := service.New(backend)
	admin, _, err := st.CreateAdmin(ctx, "admin", "")
	if err != nil {
		log.Fatal(err)
	}
	keyPerson := syncengine.Category{Code: "key_person", NameZH: syncengine.NewRegister("重点对象", syncengine.Clock{HLC: 1, Node: 1})}
	if _, _, err := st.PutCategory(ctx, admin, keyPerson, false); err != nil {
		log.Fatal(err)
	}
	var parent string
	for _, level := range []store.OrgLevel{store.LevelDistrict, store.LevelStreet, store.LevelCommunity, store.LevelGrid} {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: level.String()})
		if err != nil {
			log.Fatal(err)
		}
		parent = n.ID
	}
	w, err := st.CreateWorker(ctx, admin, store.Worker{Name: "李娜", Role: 1, GridIDs: []string{parent}})
	if err != nil {
		log.Fatal(err)
	}
	code, err = st.CreateEnrollmentCode(ctx, admin, w.ID, time.Now().Add(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(server.New(st).Handler())
	return srv.URL, parent, code, func() { srv.Close(); st.Close() }
}

// A worker's phone enrols and syncs, then registers a household, tags it
// and records a visit with no network, then syncs again.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "doorbook-example")
	defer os.RemoveAll(dir)
	url, grid, code, stop := exampleServer(ctx, dir)
	defer stop()

	r, err := sdk.Open(ctx, filepath.Join(dir, "phone.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if err := r.Enroll(ctx, url, code, "Li's phone"); err != nil {
		log.Fatal(err)
	}
	// The first sync brings the grid and the must-visit categories.
	if _, err := r.Sync(ctx); err != nil {
		log.Fatal(err)
	}

	// Offline: these succeed with no network and queue for the server.
	h, err := r.RegisterHousehold(ctx, grid, map[string]string{"head_name": "张伟", "address": "东风路1号"})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.AddTag(ctx, h, "key_person"); err != nil {
		log.Fatal(err)
	}
	if _, err := r.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: "家中情况稳定"}); err != nil {
		log.Fatal(err)
	}
	pending, _ := r.Pending(ctx)
	fmt.Println("pending before sync:", pending)

	rep, err := r.Sync(ctx)
	if err != nil {
		log.Fatal(err)
	}
	pending, _ = r.Pending(ctx)
	fmt.Println("pushed:", rep.Pushed, "pending after sync:", pending)

	hs, _ := r.Households(ctx)
	for _, s := range hs {
		fmt.Println(s.HeadName, s.Address, s.Categories, s.Visits)
	}
	// Output:
	// pending before sync: 3
	// pushed: 3 pending after sync: 0
	// 张伟 东风路1号 [key_person] 1
}

package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/store"
)

var importHouseholds = flag.Int("import.households", 1000, "households of the ledger BenchmarkImportLedger imports (250 per grid, 3 persons each)")

// importEnv is a new server on loopback with a street of empty grids, and
// an admin's ledger client.
type importEnv struct {
	ledger doorbookv1connect.LedgerServiceClient
	street string
}

func newImportEnv(b *testing.B, grids int) *importEnv {
	b.Helper()
	ctx := context.Background()
	st, err := openService(ctx, filepath.Join(b.TempDir(), "server.db"))
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(server.New(st).Handler())
	b.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	admin, token, err := st.CreateAdmin(ctx, "root", "")
	if err != nil {
		b.Fatal(err)
	}
	auth := connect.WithInterceptors(bearer.Token(token))
	if _, err := doorbookv1connect.NewAdminServiceClient(http.DefaultClient, hs.URL, auth).LoadDefaultCategories(ctx, &pb.LoadDefaultCategoriesRequest{}); err != nil {
		b.Fatal(err)
	}
	mk := func(parent string, level store.OrgLevel, name string) string {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: name})
		if err != nil {
			b.Fatal(err)
		}
		return n.ID
	}
	env := &importEnv{ledger: doorbookv1connect.NewLedgerServiceClient(http.DefaultClient, hs.URL, auth, connect.WithSendGzip())}
	env.street = mk(mk("", store.LevelDistrict, "芙蓉区"), store.LevelStreet, "东风街道")
	var community string
	for g := range grids {
		if g%4 == 0 {
			community = mk(env.street, store.LevelCommunity, fmt.Sprintf("第%d社区", g/4+1))
		}
		mk(community, store.LevelGrid, fmt.Sprintf("第%d网格", g+1))
	}
	return env
}

// streetLedger is a clerk's ledger of n households as CSV: 250 a grid,
// each with a mobile, 3 persons, and every tenth a key person.
func streetLedger(n int) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"社区", "网格", "户主姓名", "地址", "手机", "人口数", "家庭成员", "五必访类别"})
	for i := range n {
		g := i / 250
		cat := ""
		if i%10 == 0 {
			cat = "重点对象"
		}
		_ = w.Write([]string{fmt.Sprintf("第%d社区", g/4+1), fmt.Sprintf("第%d网格", g+1), fmt.Sprintf("户主%d", i),
			fmt.Sprintf("幸福路 %d 号", i), fmt.Sprintf("138%08d", i), "3",
			fmt.Sprintf("户主%d、配偶%d、子女%d", i, i, i), cat})
	}
	w.Flush()
	return buf.Bytes()
}

// BenchmarkImportLedger imports a street's ledger (-import.households)
// through the API into a new database ("first"), and the same file again
// into the database that holds it ("again", which changes nothing); with
// the process's peak heap.
func BenchmarkImportLedger(b *testing.B) {
	ctx := context.Background()
	n := *importHouseholds
	file := streetLedger(n)
	grids := (n + 249) / 250
	run := func(b *testing.B, env *importEnv, want func(*pb.ImportLedgerResponse) bool) {
		res, err := env.ledger.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: env.street, FileName: "台账.csv", File: file})
		if err != nil {
			b.Fatal(err)
		}
		if !want(res) {
			b.Fatalf("import: %d created, %d unchanged, %d refused", res.GetCreated(), res.GetUnchanged(), res.GetRefused())
		}
	}
	b.Run("first", func(b *testing.B) {
		peak := watchHeap(b)
		for b.Loop() {
			b.StopTimer()
			env := newImportEnv(b, grids)
			b.StartTimer()
			run(b, env, func(r *pb.ImportLedgerResponse) bool { return int(r.GetCreated()) == n })
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "households/s")
		b.ReportMetric(peak()/(1<<20), "peak-heap-MiB")
	})
	b.Run("again", func(b *testing.B) {
		env := newImportEnv(b, grids)
		run(b, env, func(r *pb.ImportLedgerResponse) bool { return int(r.GetCreated()) == n })
		peak := watchHeap(b)
		for b.Loop() {
			run(b, env, func(r *pb.ImportLedgerResponse) bool { return int(r.GetUnchanged()) == n })
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "households/s")
		b.ReportMetric(peak()/(1<<20), "peak-heap-MiB")
	})
}

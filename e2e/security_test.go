package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"testing"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

// serverHolds reports whether the server's database holds marker. On
// SQLite that is anywhere in the bytes of its file and write-ahead log,
// live or free. On PostgreSQL it is any live row of any table, as text:
// row versions that an update or a delete left behind are VACUUM's to
// reclaim, and its write-ahead log and backups the operator's.
func (e *env) serverHolds(t *testing.T, marker string) bool {
	t.Helper()
	if e.pgDSN == "" {
		return fileHolds(t, e.dbPath, marker)
	}
	ctx := context.Background()
	db, err := sql.Open("pgx", e.pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("the server's database has %d tables: not the server's?", len(tables))
	}
	for _, table := range tables {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+table+`" r WHERE strpos(r::text, $1) > 0`, marker).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return true
		}
	}
	return false
}

// fileHolds reports whether the replica's files (the database and its
// write-ahead log) contain marker anywhere, in any page, live or free.
func fileHolds(t *testing.T, path, marker string) bool {
	t.Helper()
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(marker)) {
			return true
		}
	}
	return false
}

func TestRevokedDeviceIsRefusedAndWiped(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1)
	workerID, code := e.worker("Li", e.Grids[0])
	lost := e.enroll("lost", code)
	other := e.device("other", workerID)

	const marker = "Lost-Phone-Marker-7f3a"
	h, err := lost.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": marker, "address": marker + " Road"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, lost)
	// An edit made after the last sync: it must never reach the server.
	if err := lost.EditHousehold(ctx, h, map[string]string{"notes": "unsent " + marker}); err != nil {
		t.Fatal(err)
	}
	if !fileHolds(t, lost.Path(), marker) {
		t.Fatal("the marker is not in the replica's files before the wipe: the test cannot see a wipe")
	}

	devs, err := e.Admin.ListDevices(ctx, &pb.ListDevicesRequest{WorkerId: workerID})
	if err != nil {
		t.Fatal(err)
	}
	st, err := lost.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs.GetDevices()) != 2 {
		t.Fatalf("ListDevices: %d devices, want 2", len(devs.GetDevices()))
	}
	res, err := e.Admin.RevokeDevice(ctx, &pb.RevokeDeviceRequest{DeviceId: st.DeviceID, Reason: "phone reported lost"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetDevice().GetRevokedAt() == nil || res.GetDevice().GetRevokedReason() != "phone reported lost" {
		t.Fatalf("RevokeDevice answered %v", res.GetDevice())
	}

	_, err = lost.Sync(ctx)
	var revoked *sdk.RevokedError
	if !errors.As(err, &revoked) || !errors.Is(err, sdk.ErrDeviceRevoked) || revoked.Reason != "phone reported lost" {
		t.Fatalf("sync of a revoked device: %v, want a RevokedError with the reason", err)
	}
	st, err = lost.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revoked == nil || st.Households != 0 || st.Pending != 0 || st.Enrolled || len(st.Grids) != 0 {
		t.Fatalf("after revocation: status %+v, want revoked, empty, nothing pending", st)
	}
	if err := lost.EditHousehold(ctx, h, map[string]string{"notes": "again"}); !errors.Is(err, sdk.ErrDeviceRevoked) {
		t.Fatalf("write on a revoked replica: %v, want ErrDeviceRevoked", err)
	}
	if _, err := lost.Sync(ctx); !errors.Is(err, sdk.ErrDeviceRevoked) {
		t.Fatalf("second sync: %v, want ErrDeviceRevoked", err)
	}
	if fileHolds(t, lost.Path(), marker) {
		t.Fatal("the revoked replica's files still hold the household's data")
	}

	// The unsent edit never reached the server; the other device still works
	// and sees what was synced before.
	mustSync(t, other)
	got, err := other.Household(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if got.Household.Notes.Value != "" {
		t.Fatalf("the revoked device's unsent edit reached the server: notes %q", got.Household.Notes.Value)
	}

	// A new code enrols the same file again, from scratch.
	c, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: workerID})
	if err != nil {
		t.Fatal(err)
	}
	if err := lost.Enroll(ctx, e.URL, c.GetCode(), "found again"); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, lost); rep.Bootstrapped != 1 {
		t.Fatalf("re-enrolled replica bootstrapped %d households, want 1", rep.Bootstrapped)
	}
}

func TestEvictedHouseholdLeavesNoBytes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2)
	_, code := e.worker("Li", e.Grids[0])
	phone := e.enroll("li", code)
	const marker = "Moved-Away-Marker-91c2"
	h, err := phone.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": marker, "address": marker + " Lane"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.AddPerson(ctx, h, map[string]string{"name": marker + " Jr"}); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: "notes " + marker}); err != nil {
		t.Fatal(err)
	}
	// Neighbours that stay, so that the household's pages are shared.
	for range 20 {
		if _, err := phone.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "Neighbour", "address": "Same Lane"}); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, phone)
	if !fileHolds(t, phone.Path(), marker) {
		t.Fatal("the marker is not in the replica's files: the test cannot see an eviction")
	}
	if _, err := e.Admin.MoveHousehold(ctx, &pb.MoveHouseholdRequest{HouseholdId: h, GridId: e.Grids[1]}); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, phone); rep.Evicted != 1 {
		t.Fatalf("evicted %d households, want 1", rep.Evicted)
	}
	if fileHolds(t, phone.Path(), marker) {
		t.Fatal("the evicted household's data is still in the replica's files")
	}
	if st, err := phone.Status(ctx); err != nil || st.Households != 20 {
		t.Fatalf("status after eviction: %+v, %v", st, err)
	}
}

// A worker whose grids were all taken away belongs to no street; the admin
// who took them keeps the worker, and no other street's admin can issue
// codes for them or give them grids (and so reach their devices).
func TestWorkerWithoutGridsStaysWithTheirStreet(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1)
	workerID, _ := e.worker("Li", e.Grids[0])
	if _, err := e.Admin.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: workerID}); err != nil {
		t.Fatal(err)
	}
	district := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "Other district")
	street := e.node(district, pb.OrgLevel_ORG_LEVEL_STREET, "Other street")
	community := e.node(street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Other community")
	grid := e.node(community, pb.OrgLevel_ORG_LEVEL_GRID, "Other grid")
	res, err := e.Admin.CreateAdmin(ctx, &pb.CreateAdminRequest{Name: "other", NodeId: street, Role: pb.AdminRole_ADMIN_ROLE_ADMIN})
	if err != nil {
		t.Fatal(err)
	}
	other := doorbookv1connect.NewAdminServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(res.GetToken())))
	if _, err := other.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: workerID}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("another street's admin issues a code for a worker with no grids: %v, want PermissionDenied", err)
	}
	if _, err := other.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: workerID, GridIds: []string{grid}}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("another street's admin gives grids to a worker with no grids: %v, want PermissionDenied", err)
	}
	// The root admin, who took the grids, still manages the worker.
	if _, err := e.Admin.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: workerID, GridIds: []string{e.Grids[0]}}); err != nil {
		t.Fatal(err)
	}
}

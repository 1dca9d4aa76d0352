package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// TestWhoHasNotSynced: each sync tells the server the app's version and
// what waited on the phone when it began (the outbox, the oldest visit);
// admins see it per device, and list the devices silent for more than N
// days: one never synced counts from its enrolment, a revoked one not at
// all.
func TestWhoHasNotSynced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	li, _ := e.worker("李明", e.Grids[0])
	a := e.device("a", li, sdk.WithAppVersion("2.3.1 (android 14)"), sdk.WithNow(e.now.Now))
	e.device("b", li)
	lost := e.device("lost", li)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	visitedAt := e.now.Now().Add(-3 * time.Hour).UTC().Truncate(time.Millisecond)
	in := sdkVisit(h)
	in.VisitedAt = visitedAt
	if _, err := a.RecordVisit(ctx, in); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)

	devices := func(silentDays uint32) map[string]*pb.Device {
		t.Helper()
		res, err := e.Admin.ListDevices(ctx, &pb.ListDevicesRequest{WorkerId: li, SilentDays: silentDays})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*pb.Device{}
		for _, d := range res.GetDevices() {
			out[d.GetName()] = d
		}
		return out
	}
	all := devices(0)
	da := all["a"]
	if da.GetLastSyncAt() == nil || da.GetAppVersion() != "2.3.1 (android 14)" || da.GetOutbox() != 2 ||
		!da.GetOldestUnsyncedVisitAt().AsTime().Equal(visitedAt) {
		t.Errorf("device a after its sync: %v", da)
	}
	if d := all["b"]; d.GetLastSyncAt() != nil || d.GetAppVersion() != "" {
		t.Errorf("device b never synced, yet: %v", d)
	}
	if silent := devices(7); len(silent) != 0 {
		t.Errorf("silent for 7 days right after enrolling: %v", silent)
	}

	// Eight days on: every device is silent but the revoked one; a sync
	// takes a off the list, and says nothing waited.
	st, err := lost.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.RevokeDevice(ctx, &pb.RevokeDeviceRequest{DeviceId: st.DeviceID, Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	e.now.Add(8 * 24 * time.Hour)
	if silent := devices(7); len(silent) != 2 || silent["a"] == nil || silent["b"] == nil {
		t.Errorf("silent for 7 days, 8 days on: %v; want a and b", silent)
	}
	mustSync(t, a)
	silent := devices(7)
	if len(silent) != 1 || silent["b"] == nil {
		t.Errorf("silent for 7 days after a synced: %v; want b", silent)
	}
	// The console's workers page, filtered to the silent phones.
	if err := e.Store.SetAdminPassword(ctx, "root", "the installation's password"); err != nil {
		t.Fatal(err)
	}
	br := (&consoleEnv{env: e}).browser()
	br.signIn("root", "the installation's password")
	_, _, page := br.get("/console/workers?silent=1")
	if !strings.Contains(page, "7 天以上未同步的手机 (1)") || !strings.Contains(page, "<strong>b</strong>") ||
		strings.Contains(page, "<strong>a</strong>") {
		t.Errorf("the console's silent phones: want b alone:\n%s", page)
	}
	_, _, page = br.get("/console/workers")
	if !strings.Contains(page, "2.3.1 (android 14)") || !strings.Contains(page, `class="device silent"`) {
		t.Errorf("the console's workers page lacks a's version or b's silence:\n%s", page)
	}

	if da := devices(0)["a"]; da.GetOutbox() != 0 || da.GetOldestUnsyncedVisitAt() != nil ||
		da.GetLastSyncAt().AsTime().Before(e.now.Now().Add(-time.Minute)) {
		t.Errorf("device a after a sync with nothing waiting, on the server's clock: %v", da)
	}
}

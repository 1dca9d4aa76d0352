package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/server/store"
)

// testReposZero: zero reports are kept as written and listed for the nodes
// asked whose periods overlap the one asked, by node and period.
func testReposZero(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	a, b := newID(), newID()
	week := 7 * 24 * time.Hour
	mon := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	at := time.UnixMilli(time.Now().UnixMilli()).UTC()
	zs := []store.ZeroReport{
		{ID: newID(), NodeID: a, From: mon, Until: mon.Add(week), Note: "本周无矛盾纠纷", AdminID: newID(), AdminName: "王社区", ReportedAt: at},
		{ID: newID(), NodeID: a, From: mon.Add(week), Until: mon.Add(2 * week), AdminID: newID(), AdminName: "王社区", ReportedAt: at},
		{ID: newID(), NodeID: b, From: mon, Until: mon.Add(week), AdminID: newID(), AdminName: "李网格", ReportedAt: at},
		{ID: newID(), NodeID: newID(), From: mon, Until: mon.Add(week), AdminID: newID(), AdminName: "其他", ReportedAt: at},
	}
	for _, z := range zs {
		e.update("InsertZeroReport", func(tx store.Tx) error { return tx.InsertZeroReport(ctx, z) })
	}
	list := func(from, until time.Time) []store.ZeroReport {
		return inView(e, "ZeroReports", func(tx store.Tx) ([]store.ZeroReport, error) {
			return tx.ZeroReports(ctx, []string{b, a}, from, until)
		})
	}
	want := []store.ZeroReport{zs[0], zs[2]}
	if b < a {
		want = []store.ZeroReport{zs[2], zs[0]}
	}
	if got := list(mon, mon.Add(week)); !slices.Equal(got, want) {
		t.Errorf("ZeroReports of the first week = %+v;\nwant %+v", got, want)
	}
	if got := list(mon.Add(week-time.Millisecond), mon.Add(week+time.Millisecond)); len(got) != 3 {
		t.Errorf("ZeroReports of a period across both weeks = %d reports, want 3", len(got))
	}
	if got := list(mon.Add(2*week), mon.Add(3*week)); len(got) != 0 {
		t.Errorf("ZeroReports of the third week = %+v; want none (periods end before until)", got)
	}
	if got := inView(e, "ZeroReports of no node", func(tx store.Tx) ([]store.ZeroReport, error) {
		return tx.ZeroReports(ctx, nil, mon, mon.Add(week))
	}); len(got) != 0 {
		t.Errorf("ZeroReports of no node = %+v", got)
	}
}

func (r *recordingTx) InsertZeroReport(ctx context.Context, z store.ZeroReport) error {
	r.use("InsertZeroReport")
	return r.Tx.InsertZeroReport(ctx, z)
}

func (r *recordingTx) ZeroReports(ctx context.Context, nodeIDs []string, from, until time.Time) ([]store.ZeroReport, error) {
	r.use("ZeroReports")
	return r.Tx.ZeroReports(ctx, nodeIDs, from, until)
}

package storetest

import (
	"context"
	"testing"

	"github.com/doorbook/doorbook/server/store"
)

// testReposRanking: a campaign's ranking rule is kept as written, replaced
// whole, and "" for a campaign without one.
func testReposRanking(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	a, b := newID(), newID()
	read := func(id string) string {
		return inView(e, "Ranking", func(tx store.Tx) (string, error) { return tx.Ranking(ctx, id) })
	}
	if got := read(a); got != "" {
		t.Errorf("Ranking of a campaign without one = %q", got)
	}
	e.update("PutRanking", func(tx store.Tx) error { return tx.PutRanking(ctx, a, "coverage=1;1-7=3000/300") })
	e.update("PutRanking", func(tx store.Tx) error { return tx.PutRanking(ctx, b, "key_group=1") })
	e.update("PutRanking", func(tx store.Tx) error { return tx.PutRanking(ctx, a, "coverage=40,key_group=60") })
	if got := read(a); got != "coverage=40,key_group=60" {
		t.Errorf("Ranking after a second PutRanking = %q", got)
	}
	if got := read(b); got != "key_group=1" {
		t.Errorf("Ranking of another campaign = %q", got)
	}
}

func (r *recordingTx) Ranking(ctx context.Context, campaignID string) (string, error) {
	r.use("Ranking")
	return r.Tx.Ranking(ctx, campaignID)
}

func (r *recordingTx) PutRanking(ctx context.Context, campaignID, spec string) error {
	r.use("PutRanking")
	return r.Tx.PutRanking(ctx, campaignID, spec)
}

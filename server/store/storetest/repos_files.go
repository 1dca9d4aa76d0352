package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/server/store"
)

// testReposFiles: a file's pieces are kept in order and read back from any
// offset, its count and state follow, a dropped file is gone but its links
// stay, links are kept once and listed by visit and name.
func testReposFiles(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	content := []byte("0123456789abcdefghij")
	a := describe("b.jpg", content)
	type state struct {
		received int64
		complete bool
	}
	stateOf := func(sha string) state {
		return inView(e, "AttachmentState", func(tx store.Tx) (state, error) {
			r, c, err := tx.AttachmentState(ctx, sha)
			return state{r, c}, err
		})
	}
	if got := stateOf(a.SHA256); got != (state{}) {
		t.Errorf("AttachmentState of an unknown file = %+v; want none", got)
	}
	for _, piece := range [][2]int64{{0, 8}, {8, 16}, {16, 20}} {
		e.update("AppendAttachment", func(tx store.Tx) error {
			return tx.AppendAttachment(ctx, a.SHA256, a.Size, piece[0], content[piece[0]:piece[1]])
		})
	}
	if got := stateOf(a.SHA256); got != (state{received: 20}) {
		t.Errorf("AttachmentState after three pieces = %+v; want 20 bytes, not whole", got)
	}
	read := func(from int64) []byte {
		var out []byte
		e.view("ReadAttachment", func(tx store.Tx) error {
			return tx.ReadAttachment(ctx, a.SHA256, from, func(at int64, data []byte) error {
				if at > from+int64(len(out)) || at+int64(len(data)) <= from {
					return errors.New("a piece out of order or before the offset")
				}
				out = append(out, data[max(0, from+int64(len(out))-at):]...)
				return nil
			})
		})
		return out
	}
	for _, from := range []int64{0, 5, 8, 19, 20} {
		if got := read(from); !bytes.Equal(got, content[from:]) {
			t.Errorf("ReadAttachment from %d = %q; want %q", from, got, content[from:])
		}
	}
	e.update("CompleteAttachment", func(tx store.Tx) error { return tx.CompleteAttachment(ctx, a.SHA256) })
	if got := stateOf(a.SHA256); got != (state{received: 20, complete: true}) {
		t.Errorf("AttachmentState after CompleteAttachment = %+v", got)
	}

	v1, v2 := newID(), newID()
	at := time.UnixMilli(time.Now().UnixMilli()).UTC()
	other := describe("a.png", []byte("other"))
	for _, l := range []store.VisitAttachment{
		{VisitID: v1, Attachment: a, LinkedAt: at},
		{VisitID: v1, Attachment: a, LinkedAt: at.Add(time.Hour)}, // again: kept once, as first
		{VisitID: v1, Attachment: other, LinkedAt: at},
		{VisitID: v2, Attachment: a, LinkedAt: at},
	} {
		e.update("LinkAttachment", func(tx store.Tx) error { return tx.LinkAttachment(ctx, l) })
	}
	links := inView(e, "VisitAttachments", func(tx store.Tx) ([]store.VisitAttachment, error) {
		return tx.VisitAttachments(ctx, []string{v2, v1, newID()})
	})
	want := []store.VisitAttachment{
		{VisitID: v1, Attachment: other, LinkedAt: at},
		{VisitID: v1, Attachment: a, LinkedAt: at, Complete: true},
		{VisitID: v2, Attachment: a, LinkedAt: at, Complete: true},
	}
	if v2 < v1 {
		want = []store.VisitAttachment{want[2], want[0], want[1]}
	}
	if !slices.Equal(links, want) {
		t.Errorf("VisitAttachments = %+v;\nwant %+v", links, want)
	}
	visits := inView(e, "AttachmentVisits", func(tx store.Tx) ([]string, error) { return tx.AttachmentVisits(ctx, a.SHA256) })
	if !slices.Equal(visits, slices.Sorted(slices.Values([]string{v1, v2}))) {
		t.Errorf("AttachmentVisits = %v; want %s and %s in order", visits, v1, v2)
	}

	e.update("DropAttachment", func(tx store.Tx) error { return tx.DropAttachment(ctx, a.SHA256) })
	if got := stateOf(a.SHA256); got != (state{}) {
		t.Errorf("AttachmentState after DropAttachment = %+v; want none", got)
	}
	if got := read(0); len(got) != 0 {
		t.Errorf("ReadAttachment after DropAttachment = %q; want nothing", got)
	}
	if visits := inView(e, "AttachmentVisits", func(tx store.Tx) ([]string, error) { return tx.AttachmentVisits(ctx, a.SHA256) }); len(visits) != 2 {
		t.Errorf("DropAttachment took the links with it: %v", visits)
	}
	// Unlinking one visit leaves the file to the other; unlinking both
	// leaves it to none.
	if orphans := inUpdate(e, "UnlinkAttachments", func(tx store.Tx) ([]string, error) { return tx.UnlinkAttachments(ctx, []string{v1}) }); len(orphans) != 1 || orphans[0] != other.SHA256 {
		t.Errorf("UnlinkAttachments(v1) = %v; want only %s, which v2 does not have", orphans, other.SHA256)
	}
	if orphans := inUpdate(e, "UnlinkAttachments", func(tx store.Tx) ([]string, error) { return tx.UnlinkAttachments(ctx, []string{v2, v1}) }); len(orphans) != 1 || orphans[0] != a.SHA256 {
		t.Errorf("UnlinkAttachments(v2) = %v; want %s", orphans, a.SHA256)
	}
	if visits := inView(e, "AttachmentVisits", func(tx store.Tx) ([]string, error) { return tx.AttachmentVisits(ctx, a.SHA256) }); len(visits) != 0 {
		t.Errorf("AttachmentVisits after unlinking every visit = %v", visits)
	}
	// Dropped, it is uploaded again from the start.
	e.update("AppendAttachment after a drop", func(tx store.Tx) error { return tx.AppendAttachment(ctx, a.SHA256, a.Size, 0, content) })
	if got := stateOf(a.SHA256); got != (state{received: 20}) {
		t.Errorf("AttachmentState after a new start = %+v", got)
	}
}

func (r *recordingTx) AttachmentState(ctx context.Context, sha string) (int64, bool, error) {
	r.use("AttachmentState")
	return r.Tx.AttachmentState(ctx, sha)
}

func (r *recordingTx) AppendAttachment(ctx context.Context, sha string, size, offset int64, data []byte) error {
	r.use("AppendAttachment")
	return r.Tx.AppendAttachment(ctx, sha, size, offset, data)
}

func (r *recordingTx) CompleteAttachment(ctx context.Context, sha string) error {
	r.use("CompleteAttachment")
	return r.Tx.CompleteAttachment(ctx, sha)
}

func (r *recordingTx) DropAttachment(ctx context.Context, sha string) error {
	r.use("DropAttachment")
	return r.Tx.DropAttachment(ctx, sha)
}

func (r *recordingTx) ReadAttachment(ctx context.Context, sha string, offset int64, fn func(int64, []byte) error) error {
	r.use("ReadAttachment")
	return r.Tx.ReadAttachment(ctx, sha, offset, fn)
}

func (r *recordingTx) LinkAttachment(ctx context.Context, a store.VisitAttachment) error {
	r.use("LinkAttachment")
	return r.Tx.LinkAttachment(ctx, a)
}

func (r *recordingTx) VisitAttachments(ctx context.Context, visitIDs []string) ([]store.VisitAttachment, error) {
	r.use("VisitAttachments")
	return r.Tx.VisitAttachments(ctx, visitIDs)
}

func (r *recordingTx) AttachmentVisits(ctx context.Context, sha string) ([]string, error) {
	r.use("AttachmentVisits")
	return r.Tx.AttachmentVisits(ctx, sha)
}

func (r *recordingTx) UnlinkAttachments(ctx context.Context, visitIDs []string) ([]string, error) {
	r.use("UnlinkAttachments")
	return r.Tx.UnlinkAttachments(ctx, visitIDs)
}

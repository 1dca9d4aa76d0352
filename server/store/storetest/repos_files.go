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

// testReposFiles: a copy's pieces are kept in order and read back from any
// offset, its state follows; two workers' copies of one file are apart; a
// dropped copy is gone but its links stay; links are kept once, listed by
// visit and name, with their copy's state; unlinking returns the copies no
// visit links since.
func testReposFiles(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	content := []byte("0123456789abcdefghij")
	a := describe("b.jpg", content)
	mine, theirs := store.FileKey{SHA256: a.SHA256, Owner: newID()}, store.FileKey{SHA256: a.SHA256, Owner: newID()}
	stateOf := func(k store.FileKey) store.FileState {
		return inView(e, "AttachmentState", func(tx store.Tx) (store.FileState, error) { return tx.AttachmentState(ctx, k) })
	}
	if got := stateOf(mine); got != (store.FileState{}) {
		t.Errorf("AttachmentState of an unknown copy = %+v; want none", got)
	}
	for _, piece := range [][2]int64{{0, 8}, {8, 16}, {16, 20}} {
		e.update("AppendAttachment", func(tx store.Tx) error {
			return tx.AppendAttachment(ctx, mine, a.Size, piece[0], content[piece[0]:piece[1]])
		})
	}
	e.update("AppendAttachment of another worker's copy", func(tx store.Tx) error {
		return tx.AppendAttachment(ctx, theirs, 99, 0, []byte("xyz"))
	})
	if got := stateOf(mine); got != (store.FileState{Size: 20, Received: 20}) {
		t.Errorf("AttachmentState after three pieces = %+v; want 20 of 20 bytes, not whole", got)
	}
	if got := stateOf(theirs); got != (store.FileState{Size: 99, Received: 3}) {
		t.Errorf("AttachmentState of another worker's copy = %+v; want 3 of 99", got)
	}
	read := func(k store.FileKey, from int64) []byte {
		var out []byte
		e.view("ReadAttachment", func(tx store.Tx) error {
			return tx.ReadAttachment(ctx, k, from, func(at int64, data []byte) error {
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
		if got := read(mine, from); !bytes.Equal(got, content[from:]) {
			t.Errorf("ReadAttachment from %d = %q; want %q", from, got, content[from:])
		}
	}
	if got := read(theirs, 0); string(got) != "xyz" {
		t.Errorf("ReadAttachment of the other copy = %q", got)
	}
	e.update("CompleteAttachment", func(tx store.Tx) error { return tx.CompleteAttachment(ctx, mine) })
	if got := stateOf(mine); got != (store.FileState{Size: 20, Received: 20, Complete: true}) {
		t.Errorf("AttachmentState after CompleteAttachment = %+v", got)
	}
	if got := stateOf(theirs); got.Complete {
		t.Error("completing one worker's copy completed another's")
	}

	v1, v2 := newID(), newID()
	at := time.UnixMilli(time.Now().UnixMilli()).UTC()
	other := describe("a.png", []byte("other"))
	for _, l := range []store.VisitAttachment{
		{VisitID: v1, Owner: mine.Owner, Attachment: a, LinkedAt: at},
		{VisitID: v1, Owner: mine.Owner, Attachment: a, LinkedAt: at.Add(time.Hour)}, // again: kept once, as first
		{VisitID: v1, Owner: mine.Owner, Attachment: other, LinkedAt: at},
		{VisitID: v2, Owner: theirs.Owner, Attachment: a, LinkedAt: at},
	} {
		e.update("LinkAttachment", func(tx store.Tx) error { return tx.LinkAttachment(ctx, l) })
	}
	links := inView(e, "VisitAttachments", func(tx store.Tx) ([]store.VisitAttachment, error) {
		return tx.VisitAttachments(ctx, []string{v2, v1, newID()})
	})
	want := []store.VisitAttachment{
		{VisitID: v1, Owner: mine.Owner, Attachment: other, LinkedAt: at},
		{VisitID: v1, Owner: mine.Owner, Attachment: a, LinkedAt: at, Complete: true},
		{VisitID: v2, Owner: theirs.Owner, Attachment: a, LinkedAt: at}, // their copy is not whole
	}
	if v2 < v1 {
		want = []store.VisitAttachment{want[2], want[0], want[1]}
	}
	if !slices.Equal(links, want) {
		t.Errorf("VisitAttachments = %+v;\nwant %+v", links, want)
	}
	byFile := inView(e, "AttachmentLinks", func(tx store.Tx) ([]store.VisitAttachment, error) { return tx.AttachmentLinks(ctx, a.SHA256) })
	wantByFile := []store.VisitAttachment{want[1], want[2]}
	if v2 < v1 {
		wantByFile = []store.VisitAttachment{want[0], want[2]}
	}
	if !slices.Equal(byFile, wantByFile) {
		t.Errorf("AttachmentLinks = %+v;\nwant %+v", byFile, wantByFile)
	}

	e.update("DropAttachment", func(tx store.Tx) error { return tx.DropAttachment(ctx, mine) })
	if got := stateOf(mine); got != (store.FileState{}) {
		t.Errorf("AttachmentState after DropAttachment = %+v; want none", got)
	}
	if got := read(mine, 0); len(got) != 0 {
		t.Errorf("ReadAttachment after DropAttachment = %q; want nothing", got)
	}
	if got := stateOf(theirs); got.Received != 3 {
		t.Errorf("dropping one copy touched another: %+v", got)
	}
	if got := inView(e, "AttachmentLinks", func(tx store.Tx) ([]store.VisitAttachment, error) { return tx.AttachmentLinks(ctx, a.SHA256) }); len(got) != 2 {
		t.Errorf("DropAttachment took the links with it: %v", got)
	}
	// Unlinking v1 orphans both of its copies (v2 links another worker's
	// copy of the same file); unlinking v2 orphans that one.
	orphans := inUpdate(e, "UnlinkAttachments", func(tx store.Tx) ([]store.FileKey, error) { return tx.UnlinkAttachments(ctx, []string{v1}) })
	slices.SortFunc(orphans, func(x, y store.FileKey) int { return bytes.Compare([]byte(x.SHA256), []byte(y.SHA256)) })
	wantOrphans := []store.FileKey{{SHA256: other.SHA256, Owner: mine.Owner}, mine}
	slices.SortFunc(wantOrphans, func(x, y store.FileKey) int { return bytes.Compare([]byte(x.SHA256), []byte(y.SHA256)) })
	if !slices.Equal(orphans, wantOrphans) {
		t.Errorf("UnlinkAttachments(v1) = %v; want %v", orphans, wantOrphans)
	}
	if got := inUpdate(e, "UnlinkAttachments", func(tx store.Tx) ([]store.FileKey, error) { return tx.UnlinkAttachments(ctx, []string{v2}) }); !slices.Equal(got, []store.FileKey{theirs}) {
		t.Errorf("UnlinkAttachments(v2) = %v; want %v", got, theirs)
	}
	if got := inView(e, "AttachmentLinks", func(tx store.Tx) ([]store.VisitAttachment, error) { return tx.AttachmentLinks(ctx, a.SHA256) }); len(got) != 0 {
		t.Errorf("AttachmentLinks after unlinking every visit = %v", got)
	}
	// Dropped, a copy is uploaded again from the start.
	e.update("AppendAttachment after a drop", func(tx store.Tx) error { return tx.AppendAttachment(ctx, mine, a.Size, 0, content) })
	if got := stateOf(mine); got != (store.FileState{Size: 20, Received: 20}) {
		t.Errorf("AttachmentState after a new start = %+v", got)
	}
}

func (r *recordingTx) AttachmentState(ctx context.Context, k store.FileKey) (store.FileState, error) {
	r.use("AttachmentState")
	return r.Tx.AttachmentState(ctx, k)
}

func (r *recordingTx) AppendAttachment(ctx context.Context, k store.FileKey, size, offset int64, data []byte) error {
	r.use("AppendAttachment")
	return r.Tx.AppendAttachment(ctx, k, size, offset, data)
}

func (r *recordingTx) CompleteAttachment(ctx context.Context, k store.FileKey) error {
	r.use("CompleteAttachment")
	return r.Tx.CompleteAttachment(ctx, k)
}

func (r *recordingTx) DropAttachment(ctx context.Context, k store.FileKey) error {
	r.use("DropAttachment")
	return r.Tx.DropAttachment(ctx, k)
}

func (r *recordingTx) ReadAttachment(ctx context.Context, k store.FileKey, offset int64, fn func(int64, []byte) error) error {
	r.use("ReadAttachment")
	return r.Tx.ReadAttachment(ctx, k, offset, fn)
}

func (r *recordingTx) LinkAttachment(ctx context.Context, a store.VisitAttachment) error {
	r.use("LinkAttachment")
	return r.Tx.LinkAttachment(ctx, a)
}

func (r *recordingTx) VisitAttachments(ctx context.Context, visitIDs []string) ([]store.VisitAttachment, error) {
	r.use("VisitAttachments")
	return r.Tx.VisitAttachments(ctx, visitIDs)
}

func (r *recordingTx) AttachmentLinks(ctx context.Context, sha string) ([]store.VisitAttachment, error) {
	r.use("AttachmentLinks")
	return r.Tx.AttachmentLinks(ctx, sha)
}

func (r *recordingTx) UnlinkAttachments(ctx context.Context, visitIDs []string) ([]store.FileKey, error) {
	r.use("UnlinkAttachments")
	return r.Tx.UnlinkAttachments(ctx, visitIDs)
}

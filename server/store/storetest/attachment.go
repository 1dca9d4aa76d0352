package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// testAttachments: a visit's file is kept piece by piece in order, a piece
// at another offset is not kept, the last piece is checked against the
// SHA-256 (a mismatch drops the file), a whole file is shared by the
// visits that name it; only the visit's worker uploads, after the visit;
// readers are the workers of the household's grid and admins of its
// subtree; the limits hold.
func testAttachments(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	w, dev := e.worker("A", e.g1.ID)
	_, other := e.worker("B", e.g1.ID)
	_, far := e.worker("C", e.g3.ID)
	x := e.register(dev, e.g1.ID)
	content := bytes.Repeat([]byte("走访照片"), 100_000) // 1.2 MB: five pieces
	a := describe("photo.jpg", content)
	piece := func(at int) []byte { return content[at:min(at+syncengine.AttachmentChunk, len(content))] }

	// Before the visit is on the server, and by another worker: refused.
	if _, _, err := e.s.UploadAttachment(ctx, dev, newID(), a, 0, nil); err == nil {
		t.Error("a file for a visit the server does not have was taken")
	}
	_, _, err := e.s.UploadAttachment(ctx, other, x.v.ID, a, 0, piece(0))
	wantErr(t, err, "another worker uploading to A's visit", syncengine.ErrOutOfScope)

	got, complete, err := e.s.UploadAttachment(ctx, dev, x.v.ID, a, 0, nil)
	if err != nil || got != 0 || complete {
		t.Fatalf("asking about a new file = %d, %v, %v; want 0, false, nil", got, complete, err)
	}
	if got, _, err = e.s.UploadAttachment(ctx, dev, x.v.ID, a, 0, piece(0)); err != nil || got != syncengine.AttachmentChunk {
		t.Fatalf("first piece = %d, %v", got, err)
	}
	// A piece sent again (its answer was lost) or from too far on is not
	// kept: the answer says where to go on.
	for _, at := range []int{0, 2 * syncengine.AttachmentChunk} {
		if got, _, err = e.s.UploadAttachment(ctx, dev, x.v.ID, a, int64(at), piece(at)); err != nil || got != syncengine.AttachmentChunk {
			t.Errorf("a piece at %d = %d, %v; want the count %d unchanged", at, got, err, syncengine.AttachmentChunk)
		}
	}
	if listed, err := e.s.ListAttachments(ctx, dev, []string{x.v.ID}); err != nil || len(listed) != 0 {
		t.Errorf("a file not yet whole is listed: %+v, %v", listed, err)
	}
	for at := syncengine.AttachmentChunk; at < len(content); at += syncengine.AttachmentChunk {
		got, complete, err = e.s.UploadAttachment(ctx, dev, x.v.ID, a, int64(at), piece(at))
		if err != nil {
			t.Fatalf("piece at %d: %v", at, err)
		}
	}
	if got != int64(len(content)) || !complete {
		t.Fatalf("after the last piece = %d, %v; want %d, whole", got, complete, len(content))
	}

	// Readers.
	for _, r := range []struct {
		who  string
		p    store.Principal
		want error
	}{
		{"the worker", dev, nil},
		{"another worker of the grid", other, nil},
		{"the street's admin", e.admin(e.s1.ID), nil},
		{"a worker of another grid", far, syncengine.ErrOutOfScope},
		{"another street's admin", e.admin(e.s2.ID), syncengine.ErrOutOfScope},
	} {
		listed, err := e.s.ListAttachments(ctx, r.p, []string{x.v.ID})
		var down bytes.Buffer
		derr := e.s.DownloadAttachment(ctx, r.p, a.SHA256, 0, func(size, at int64, data []byte) error {
			if size != a.Size || at != int64(down.Len()) {
				return fmt.Errorf("piece at %d of %d after %d bytes", at, size, down.Len())
			}
			down.Write(data)
			return nil
		})
		if r.want != nil {
			wantErr(t, err, r.who+" listing", r.want)
			wantErr(t, derr, r.who+" downloading", r.want)
			continue
		}
		if err != nil || len(listed) != 1 || listed[0].Attachment != a || !listed[0].Complete {
			t.Errorf("%s lists %+v, %v", r.who, listed, err)
		}
		if derr != nil || !bytes.Equal(down.Bytes(), content) {
			t.Errorf("%s downloads %d bytes, %v; want the file", r.who, down.Len(), derr)
		}
	}
	var tail []byte
	if err := e.s.DownloadAttachment(ctx, dev, a.SHA256, a.Size-10, func(_, _ int64, data []byte) error {
		tail = append(tail, data...)
		return nil
	}); err != nil || !bytes.Equal(tail, content[len(content)-10:]) {
		t.Errorf("a download resumed 10 bytes before the end = %q, %v", tail, err)
	}

	// Another worker of the grid who knows the file's hash has no share in
	// it: naming it links nothing and reads nothing, and the bytes that
	// worker sends under the hash are a copy of their own, which cannot
	// spoil A's.
	_, bv := e.worker("B's visits", e.g1.ID)
	bVisit := e.visit(bv.ID, x.h.ID)
	e.push(bv, change(bVisit))
	if got, complete, err := e.s.UploadAttachment(ctx, bv, bVisit.ID, a, 0, nil); err != nil || complete || got != 0 {
		t.Errorf("another worker naming A's file by its hash = %d, %v, %v; want nothing held of their own copy", got, complete, err)
	}
	if got, complete, err := e.s.UploadAttachment(ctx, bv, bVisit.ID, a, 0, []byte("garbage")); err != nil || complete || got != 7 {
		t.Errorf("another worker's garbage under A's hash = %d, %v, %v; want 7 bytes of their own copy", got, complete, err)
	}
	if listed, err := e.s.ListAttachments(ctx, bv, []string{bVisit.ID}); err != nil || len(listed) != 0 {
		t.Errorf("B's visit lists %+v, %v; want nothing", listed, err)
	}
	if got, complete, err := e.s.UploadAttachment(ctx, dev, x.v.ID, a, 0, nil); err != nil || !complete || got != a.Size {
		t.Errorf("A's file after B's attempts = %d, %v, %v; want whole", got, complete, err)
	}
	wrongSize := a
	wrongSize.Size = 5
	_, _, err = e.s.UploadAttachment(ctx, dev, x.v.ID, wrongSize, 0, nil)
	wantErr(t, err, "a file named with another size than it has", syncengine.ErrInvalid)

	// A whole file is linked to another visit at once, with no bytes sent.
	v2 := e.visit(w.ID, x.h.ID)
	e.push(dev, change(v2))
	if got, complete, err := e.s.UploadAttachment(ctx, dev, v2.ID, a, 0, nil); err != nil || !complete || got != a.Size {
		t.Errorf("the same file for a second visit = %d, %v, %v; want whole at once", got, complete, err)
	}

	// Content that does not match its name is dropped whole.
	bad := describe("pledge.png", []byte("signed"))
	_, _, err = e.s.UploadAttachment(ctx, dev, x.v.ID, bad, 0, []byte("forged"))
	wantErr(t, err, "content that does not match its SHA-256", syncengine.ErrInvalid)
	if got, _, err := e.s.UploadAttachment(ctx, dev, x.v.ID, bad, 0, nil); err != nil || got != 0 {
		t.Errorf("after a mismatch the server holds %d bytes (%v), want none", got, err)
	}
	if got, complete, err := e.s.UploadAttachment(ctx, dev, x.v.ID, bad, 0, []byte("signed")); err != nil || !complete || got != 6 {
		t.Errorf("the right content after a mismatch = %d, %v, %v", got, complete, err)
	}

	// After the household's data is erased, its visits' files are gone and
	// none is taken again (a phone may still hold one).
	gone := e.register(dev, e.g1.ID)
	photo := describe("photo.jpg", []byte("the door"))
	if _, complete, err := e.s.UploadAttachment(ctx, dev, gone.v.ID, photo, 0, []byte("the door")); err != nil || !complete {
		t.Fatalf("upload before the erasure: %v, %v", complete, err)
	}
	erased, err := e.s.ErasePersonalData(ctx, e.root, store.ErasureTarget{HouseholdID: gone.h.ID, Reason: "asked", At: time.Now()},
		func(syncengine.Clock) syncengine.Clock { return e.clk.next() })
	if err != nil || erased.Files != 1 {
		t.Fatalf("ErasePersonalData = %+v, %v; want 1 file deleted", erased, err)
	}
	if got, _, err := e.s.UploadAttachment(ctx, dev, gone.v.ID, photo, 0, nil); !errors.Is(err, syncengine.ErrInvalid) || got != 0 {
		t.Errorf("an upload to a visit of an erased household = %d, %v; want ErrInvalid", got, err)
	}

	// Limits: pieces, sizes, files per visit.
	big := describe("big.jpg", make([]byte, syncengine.MaxAttachmentBytes+1))
	_, _, err = e.s.UploadAttachment(ctx, dev, x.v.ID, big, 0, nil)
	wantErr(t, err, "a file over the limit", syncengine.ErrInvalid)
	_, _, err = e.s.UploadAttachment(ctx, dev, x.v.ID, describe("x", make([]byte, 2*syncengine.AttachmentChunk)), 0, make([]byte, syncengine.AttachmentChunk+1))
	wantErr(t, err, "a piece over the limit", syncengine.ErrLimit)
	v3 := e.visit(w.ID, x.h.ID)
	e.push(dev, change(v3))
	// Questions and unfinished uploads take no place: a file is the
	// visit's once whole.
	for i := range 2 * syncengine.MaxAttachmentsPerVisit {
		if _, _, err := e.s.UploadAttachment(ctx, dev, v3.ID, describe("q", []byte{byte(i), 1, 2}), 0, []byte{byte(i)}); err != nil {
			t.Fatalf("an unfinished file %d of a visit: %v", i+1, err)
		}
	}
	for i := range syncengine.MaxAttachmentsPerVisit {
		if _, complete, err := e.s.UploadAttachment(ctx, dev, v3.ID, describe("p", []byte{byte(i)}), 0, []byte{byte(i)}); err != nil || !complete {
			t.Fatalf("file %d of a visit: %v, %v", i+1, complete, err)
		}
	}
	_, _, err = e.s.UploadAttachment(ctx, dev, v3.ID, describe("p", []byte("one more")), 0, nil)
	wantErr(t, err, "a file past the visit's limit", syncengine.ErrLimit)

	// Two phones of the worker uploading the same file at once: it is
	// whole once, and every piece was kept once.
	twin := e.device(w.ID)
	shared := describe("shared.jpg", bytes.Repeat([]byte{7, 8, 9}, syncengine.AttachmentChunk))
	sharedContent := bytes.Repeat([]byte{7, 8, 9}, syncengine.AttachmentChunk)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, p := range []store.Principal{dev, twin} {
		wg.Go(func() {
			at := int64(0)
			for {
				got, complete, err := e.s.UploadAttachment(ctx, p, x.v.ID, shared, at, sharedContent[at:min(at+syncengine.AttachmentChunk, int64(len(sharedContent)))])
				if err != nil || complete {
					errs <- err
					return
				}
				at = got
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent upload: %v", err)
		}
	}
	var down bytes.Buffer
	if err := e.s.DownloadAttachment(ctx, dev, shared.SHA256, 0, func(_, _ int64, data []byte) error {
		down.Write(data)
		return nil
	}); err != nil || !bytes.Equal(down.Bytes(), sharedContent) {
		t.Errorf("the file two phones uploaded at once: %d bytes, %v", down.Len(), err)
	}
}

func describe(name string, content []byte) syncengine.Attachment {
	sum := sha256.Sum256(content)
	return syncengine.Attachment{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Name: name, MediaType: "image/jpeg"}
}

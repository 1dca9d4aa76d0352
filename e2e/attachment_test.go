package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// uploadCutter counts the bytes of file uploads a phone sends, and cuts
// the link in the middle of an upload call once a number of them have
// gone through.
type uploadCutter struct {
	base http.RoundTripper
	// cutAfter: the upload call with content after this many is cut half
	// way through its body (0: none is).
	cutAfter atomic.Int64
	calls    atomic.Int64
	mu       sync.Mutex
	sent     int64
}

func (u *uploadCutter) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/UploadAttachment") || req.ContentLength < 1024 {
		return u.base.RoundTrip(req)
	}
	n := u.calls.Add(1)
	body := req.Body
	if c := u.cutAfter.Load(); c > 0 && n > c {
		// The body stops half way and the link with it: the server gets a
		// short body, which it must not keep.
		body = &halfBody{r: body, left: req.ContentLength / 2}
	}
	req = req.Clone(req.Context())
	req.Body = &countBody{r: body, u: u}
	return u.base.RoundTrip(req)
}

func (u *uploadCutter) bytes() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent
}

type countBody struct {
	r io.ReadCloser
	u *uploadCutter
}

func (c *countBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.u.mu.Lock()
	c.u.sent += int64(n)
	c.u.mu.Unlock()
	return n, err
}

func (c *countBody) Close() error { return c.r.Close() }

type halfBody struct {
	r    io.ReadCloser
	left int64
}

func (c *halfBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("link cut")
	}
	n, err := c.r.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	return n, err
}

func (c *halfBody) Close() error { return c.r.Close() }

// TestAttachmentUploadResumes: a photo attached offline goes up after its
// visit; an upload cut half way leaves the rows synced and goes on, at the
// next sync, from what the server holds without sending the first half
// again; the server checks the content against its SHA-256 and refuses a
// file that does not match; another worker's phone fetches the file only
// when asked; an admin downloads it, audited; the limits hold on the phone.
func TestAttachmentUploadResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	li, _ := e.worker("李明", e.Grids[0])
	wang, _ := e.worker("王芳", e.Grids[0])
	cutter := &uploadCutter{base: http.DefaultTransport.(*http.Transport).Clone()}
	a := e.device("a", li, sdk.WithHTTPClient(&http.Client{Transport: cutter}), sdk.WithoutCompression())
	b := e.device("b", wang)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟", "address": "幸福路 1 号"})
	if err != nil {
		t.Fatal(err)
	}
	visit, err := a.RecordVisit(ctx, sdkVisit(h))
	if err != nil {
		t.Fatal(err)
	}
	photo := make([]byte, 4*syncengine.AttachmentChunk+1000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range photo {
		photo[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(photo)
	sha := hex.EncodeToString(sum[:])
	att, err := a.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "动员会.jpg", MediaType: "image/jpeg", Content: bytes.NewReader(photo)})
	if err != nil {
		t.Fatal(err)
	}
	if att.SHA256 != sha || att.Size != int64(len(photo)) {
		t.Fatalf("attached %s of %d bytes, want %s of %d", att.SHA256, att.Size, sha, len(photo))
	}

	// Offline, then the link is cut during the third piece.
	cutter.cutAfter.Store(2)
	rep := mustSync(t, a)
	if rep.Pushed == 0 || rep.Attachments.Err == nil || rep.Attachments.Pending != 1 || rep.Attachments.Uploaded != 0 {
		t.Fatalf("sync over a link cut mid-upload: pushed %d, lane %+v; want the rows pushed and the file pending with an error", rep.Pushed, rep.Attachments)
	}
	half := int64(2 * syncengine.AttachmentChunk)
	if got := serverHolds(t, e, sha, li); got != half {
		t.Fatalf("the server holds %d bytes after the cut, want the %d that arrived whole", got, half)
	}
	if rep.Attachments.Bytes != half {
		t.Errorf("the lane says it sent %d bytes, want %d", rep.Attachments.Bytes, half)
	}

	// Back on a good link: only the rest goes.
	cutter.cutAfter.Store(0)
	before := cutter.bytes()
	rep = mustSync(t, a)
	if rep.Attachments.Err != nil || rep.Attachments.Uploaded != 1 || rep.Attachments.Pending != 0 {
		t.Fatalf("sync after the cut: lane %+v, want the file uploaded", rep.Attachments)
	}
	rest := int64(len(photo)) - half
	if rep.Attachments.Bytes != rest {
		t.Errorf("the resumed upload sent %d bytes of content, want the %d not yet there", rep.Attachments.Bytes, rest)
	}
	// On the wire: the rest and the messages' framing, not the first half.
	if wire := cutter.bytes() - before; wire < rest || wire > rest+4096 {
		t.Errorf("the resumed upload put %d bytes on the wire, want %d and a little framing", wire, rest)
	}
	if got := serverHolds(t, e, sha, li); got != int64(len(photo)) {
		t.Errorf("the server holds %d bytes, want %d", got, len(photo))
	}
	mine, err := a.Attachments(ctx, visit)
	if err != nil || len(mine) != 1 || !mine[0].Uploaded || !mine[0].Own {
		t.Fatalf("the phone's files of the visit: %+v, %v", mine, err)
	}

	// Another worker's phone has the visit, not its file, until it asks.
	mustSync(t, b)
	if got, err := b.Attachments(ctx, visit); err != nil || len(got) != 0 {
		t.Errorf("before asking, the other phone has files %+v, %v", got, err)
	}
	got, err := b.FetchAttachments(ctx, visit)
	if err != nil || len(got) != 1 || got[0].SHA256 != sha || got[0].Name != "动员会.jpg" || got[0].Own {
		t.Fatalf("fetched %+v, %v", got, err)
	}
	if data, err := os.ReadFile(got[0].Path); err != nil || !bytes.Equal(data, photo) {
		t.Errorf("the fetched file differs from the photo (%v)", err)
	}

	// An admin downloads it, and the audit log says so.
	ac := doorbookv1connect.NewAttachmentServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(e.adminToken)))
	list, err := ac.ListAttachments(ctx, &pb.ListAttachmentsRequest{VisitIds: []string{visit}})
	if err != nil || len(list.GetAttachments()) != 1 || list.GetAttachments()[0].GetSha256() != sha {
		t.Fatalf("the admin lists %v, %v", list.GetAttachments(), err)
	}
	stream, err := ac.DownloadAttachment(ctx, &pb.DownloadAttachmentRequest{Sha256: sha})
	if err != nil {
		t.Fatal(err)
	}
	var down []byte
	for stream.Receive() {
		down = append(down, stream.Msg().GetData()...)
	}
	if err := stream.Err(); err != nil || !bytes.Equal(down, photo) {
		t.Fatalf("the admin's download: %d bytes, %v; want the photo", len(down), err)
	}
	audit, err := e.reports(e.adminToken).ListAuditLog(ctx, &pb.ListAuditLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var audited bool
	for _, en := range audit.GetEntries() {
		audited = audited || en.GetAction() == "download attachment "+sha
	}
	if !audited {
		t.Error("the admin's download is not in the audit log")
	}
	// The visit register names the file by the hash that fetches it.
	_, data, err := exportFile(ctx, e.reports(e.adminToken), &pb.ExportRequest{Kind: pb.ExportKind_EXPORT_KIND_VISITS,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV, Language: pb.Language_LANGUAGE_EN})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("动员会.jpg "+sha)) || !bytes.Contains(data, []byte("attachments")) {
		t.Errorf("the visit register does not name the file:\n%s", data)
	}

	// A file whose bytes changed on the phone after it was attached does
	// not match its name: the server refuses it for good, the rows still
	// sync.
	forged := bytes.Repeat([]byte("签名承诺书"), 1000)
	fa, err := a.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "承诺书.png", MediaType: "image/png", Content: bytes.NewReader(forged)})
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(forged)
	tampered[0] ^= 1
	if err := os.WriteFile(fa.Path, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordVisit(ctx, sdkVisit(h)); err != nil {
		t.Fatal(err)
	}
	rep = mustSync(t, a)
	if rep.Pushed != 1 || rep.Attachments.Refused != 1 || rep.Attachments.Pending != 0 {
		t.Errorf("sync with a tampered file: pushed %d, lane %+v; want the visit pushed and the file refused", rep.Pushed, rep.Attachments)
	}
	if got := serverHolds(t, e, fa.SHA256, li); got != 0 {
		t.Errorf("the server keeps %d bytes of a file that did not match", got)
	}
	mine, err = a.Attachments(ctx, visit)
	if err != nil || len(mine) != 2 {
		t.Fatalf("the phone's files: %+v, %v", mine, err)
	}
	for _, m := range mine {
		if m.SHA256 == fa.SHA256 && !strings.Contains(m.Refused, "does not match") {
			t.Errorf("the tampered file's refusal: %q", m.Refused)
		}
	}

	// The limits, on the phone, before anything is stored or sent.
	for i := range syncengine.MaxAttachmentsPerVisit - 2 {
		if _, err := a.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "p.jpg", MediaType: "image/jpeg", Content: strings.NewReader(strings.Repeat("x", i+1))}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = a.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "one-too-many.jpg", MediaType: "image/jpeg", Content: strings.NewReader("y")})
	if !errors.Is(err, syncengine.ErrLimit) {
		t.Errorf("a file past the visit's %d: %v, want ErrLimit", syncengine.MaxAttachmentsPerVisit, err)
	}
	other, err := b.RecordVisit(ctx, sdkVisit(h))
	if err != nil {
		t.Fatal(err)
	}
	big := io.LimitReader(zeros{}, syncengine.MaxAttachmentBytes+1)
	if _, err := b.AttachFile(ctx, other, sdk.AttachmentInput{Name: "big.jpg", MediaType: "image/jpeg", Content: big}); !errors.Is(err, syncengine.ErrLimit) {
		t.Errorf("a file past %d bytes: %v, want ErrLimit", syncengine.MaxAttachmentBytes, err)
	}
	if _, err := a.AttachFile(ctx, other, sdk.AttachmentInput{Name: "x.jpg", MediaType: "image/jpeg", Content: strings.NewReader("x")}); err == nil {
		t.Error("a phone attached a file to a visit it does not have")
	}
	if _, err := b.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "x.jpg", MediaType: "image/jpeg", Content: strings.NewReader("x")}); !errors.Is(err, syncengine.ErrOutOfScope) {
		t.Errorf("another worker attaching to 李明's visit: %v, want ErrOutOfScope", err)
	}

	// A revoked phone loses its files with its rows.
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.RevokeDevice(ctx, &pb.RevokeDeviceRequest{DeviceId: st.DeviceID, Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sync(ctx); err == nil {
		t.Fatal("a revoked phone synced")
	}
	if _, err := os.Stat(got[0].Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the revoked phone still has the fetched file (%v)", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// serverHolds reads, as a server process of its own would, how many bytes
// of a worker's copy of a file the server holds.
func serverHolds(t *testing.T, e *env, sha, owner string) int64 {
	t.Helper()
	ctx := context.Background()
	db, err := e.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var received int64
	err = db.View(ctx, func(tx store.Tx) error {
		var err error
		st, err := tx.AttachmentState(ctx, store.FileKey{SHA256: sha, Owner: owner})
		received = st.Received
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return received
}

// TestErasureTakesTheFiles: erasing a household's personal data deletes
// its visits' files on the server and on every phone at its next sync,
// and a phone that still had one to upload cannot bring it back.
func TestErasureTakesTheFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	li, _ := e.worker("李明", e.Grids[0])
	a, b := e.device("a", li), e.device("b", li)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	visit, err := a.RecordVisit(ctx, sdkVisit(h))
	if err != nil {
		t.Fatal(err)
	}
	photo, err := a.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "门牌.jpg", MediaType: "image/jpeg", Content: strings.NewReader("a photo of the door")})
	if err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, a); rep.Attachments.Uploaded != 1 {
		t.Fatalf("upload: %+v", rep.Attachments)
	}
	mustSync(t, b)
	fetched, err := b.FetchAttachments(ctx, visit)
	if err != nil || len(fetched) != 1 {
		t.Fatalf("fetch: %+v, %v", fetched, err)
	}
	// A second photo of the visit waits on li's other phone for its next
	// sync, which comes after the erasure.
	late, err := b.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "late.jpg", MediaType: "image/jpeg", Content: strings.NewReader("late")})
	if err != nil {
		t.Fatal(err)
	}

	res, err := e.Admin.ErasePersonalData(ctx, &pb.ErasePersonalDataRequest{Target: &pb.ErasePersonalDataRequest_HouseholdId{HouseholdId: h}, Reason: "moved away, asked"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetFiles() != 1 {
		t.Errorf("the erasure deleted %d files, want 1", res.GetFiles())
	}
	if got := serverHolds(t, e, photo.SHA256, li); got != 0 {
		t.Errorf("the server still holds %d bytes of the erased household's photo", got)
	}
	for _, r := range []*sdk.Replica{a, b} {
		if rep := mustSync(t, r); rep.Attachments.Uploaded+rep.Attachments.Pending != 0 {
			t.Errorf("%s: after the erasure the lane %+v; want nothing left to send", r.Path(), rep.Attachments)
		}
		if files, err := r.Attachments(ctx, visit); err != nil || len(files) != 0 {
			t.Errorf("%s: files after the erasure: %+v, %v", r.Path(), files, err)
		}
		if _, err := os.Stat(photo.Path); r == a && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the photo's file is still on the phone (%v)", err)
		}
	}
	for _, f := range []string{fetched[0].Path, late.Path} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still on the other phone (%v)", f, err)
		}
	}
	if got := serverHolds(t, e, late.SHA256, li); got != 0 {
		t.Errorf("the server took %d bytes of a photo of an erased household", got)
	}
}

// forgedList answers a phone's ListAttachments with the server's list
// rewritten by forge: a server that lies, or a man in the middle.
type forgedList struct {
	base  http.RoundTripper
	forge func(*pb.ListAttachmentsResponse)
}

func (f *forgedList) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := f.base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/ListAttachments") || res.StatusCode != http.StatusOK {
		return res, err
	}
	defer res.Body.Close()
	var body io.Reader = res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		if body, err = gzip.NewReader(res.Body); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var msg pb.ListAttachmentsResponse
	if err := proto.Unmarshal(data, &msg); err != nil {
		return nil, err
	}
	f.forge(&msg)
	out, err := proto.Marshal(&msg)
	if err != nil {
		return nil, err
	}
	res.Header.Del("Content-Encoding")
	res.Header.Set("Content-Length", strconv.Itoa(len(out)))
	res.ContentLength = int64(len(out))
	res.Body = io.NopCloser(bytes.NewReader(out))
	return res, nil
}

// TestFetchRefusesForgedNames: a list of files naming a path instead of a
// hash, or another visit, is refused before anything is written; and the
// phone keeps nothing of a file it could not attach.
func TestFetchRefusesForgedNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	li, _ := e.worker("李明", e.Grids[0])
	wang, _ := e.worker("王芳", e.Grids[0])
	a := e.device("a", li)
	var forge atomic.Pointer[func(*pb.ListAttachmentsResponse)]
	noop := func(*pb.ListAttachmentsResponse) {}
	forge.Store(&noop)
	b := e.device("b", wang, sdk.WithHTTPClient(&http.Client{Transport: &forgedList{base: http.DefaultTransport,
		forge: func(m *pb.ListAttachmentsResponse) { (*forge.Load())(m) }}}), sdk.WithoutCompression())
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	visit, err := a.RecordVisit(ctx, sdkVisit(h))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "门牌.jpg", MediaType: "image/jpeg", Content: strings.NewReader("the door")}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, b)
	for name, f := range map[string]func(*pb.ListAttachmentsResponse){
		"a path for a hash": func(m *pb.ListAttachmentsResponse) { m.Attachments[0].Sha256 = "../b.db" },
		"another visit":     func(m *pb.ListAttachmentsResponse) { m.Attachments[0].VisitId = newID() },
		"a name with a path": func(m *pb.ListAttachmentsResponse) {
			m.Attachments[0].Name = "../../b.db"
		},
	} {
		forge.Store(&f)
		if got, err := b.FetchAttachments(ctx, visit); err == nil {
			t.Errorf("%s: fetched %+v", name, got)
		}
	}
	if _, err := os.Stat(b.Path()); err != nil {
		t.Fatalf("the replica's file: %v", err)
	}
	if files, err := b.Attachments(ctx, visit); err != nil || len(files) != 0 {
		t.Errorf("after forged lists the phone has %+v, %v", files, err)
	}
	// Refused before a byte is copied: nothing is left in the folder.
	if _, err := b.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "x.jpg", MediaType: "image/jpeg", Content: strings.NewReader("x")}); !errors.Is(err, syncengine.ErrOutOfScope) {
		t.Errorf("attaching to another worker's visit: %v, want ErrOutOfScope", err)
	}
	if entries, _ := os.ReadDir(b.Path() + ".files"); len(entries) != 0 {
		t.Errorf("the folder keeps %d files after refused attachments and fetches", len(entries))
	}
	forge.Store(&noop)
	if got, err := b.FetchAttachments(ctx, visit); err != nil || len(got) != 1 {
		t.Errorf("the honest list: %+v, %v", got, err)
	}
}

// TestEvictionTakesFetchedFiles: a phone that fetched a file of another
// worker's visit loses it when the household leaves its grids.
func TestEvictionTakesFetchedFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	li, _ := e.worker("李明", e.Grids[0])
	wang, _ := e.worker("王芳", e.Grids[0])
	a, b := e.device("a", li), e.device("b", wang)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	visit, err := a.RecordVisit(ctx, sdkVisit(h))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AttachFile(ctx, visit, sdk.AttachmentInput{Name: "门牌.jpg", MediaType: "image/jpeg", Content: strings.NewReader("the door")}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, b)
	got, err := b.FetchAttachments(ctx, visit)
	if err != nil || len(got) != 1 {
		t.Fatalf("fetch: %+v, %v", got, err)
	}
	if _, err := e.Admin.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: wang, GridIds: []string{e.Grids[1]}}); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, b); rep.Evicted == 0 {
		t.Fatalf("the household did not leave the phone: %+v", rep)
	}
	if _, err := os.Stat(got[0].Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the fetched file is still on the phone (%v)", err)
	}
}

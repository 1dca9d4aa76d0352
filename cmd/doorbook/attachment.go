package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// attach keeps a file with a visit, offline.
func (c *workerCmd) attach(args []string) error {
	fs := c.flags("attach")
	visit := fs.String("visit", "", "visit `id` (one of yours)")
	name := fs.String("name", "", "the file's `name` as offices will see it (default: the file's own)")
	typ := fs.String("type", "", "its MIME `type` (default: from its name, else its first bytes)")
	path := fs.String("file", "", "the photo or scan (`file`)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(required("visit", *visit), required("file", *path)); err != nil {
		return err
	}
	f, err := os.Open(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	if *name == "" {
		*name = filepath.Base(*path)
	}
	if *typ == "" {
		if *typ, err = sniff(f, *name); err != nil {
			return err
		}
	}
	if err := c.ready(); err != nil {
		return err
	}
	a, err := c.replica.AttachFile(c.ctx, *visit, sdk.AttachmentInput{Name: *name, MediaType: *typ, Content: f})
	if err != nil {
		return err
	}
	return c.out.print(map[string]any{"sha256": a.SHA256, "size": a.Size, "name": a.Name, "media_type": a.MediaType}, func(w io.Writer) {
		fmt.Fprintf(w, "attached %s (%s, %s) to visit %s (offline; sync uploads it after the visit)\n", a.Name, a.MediaType, sizeText(a.Size), *visit)
	})
}

// sniff names a file's type from its extension, else from its first
// bytes, and rewinds it.
func sniff(f *os.File, name string) (string, error) {
	if t, _, err := mime.ParseMediaType(mime.TypeByExtension(filepath.Ext(name))); err == nil && t != "" {
		return t, nil
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	t, _, err := mime.ParseMediaType(http.DetectContentType(head[:n]))
	return t, err
}

// attachments lists a visit's files; --fetch downloads those the phone
// does not hold.
func (c *workerCmd) attachments(args []string) error {
	fs := c.flags("attachments")
	visit := fs.String("visit", "", "visit `id`")
	fetch := fs.Bool("fetch", false, "download from the server the files this phone does not hold (online)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("visit", *visit); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	list := c.replica.Attachments
	if *fetch {
		list = c.replica.FetchAttachments
	}
	as, err := list(c.ctx, *visit)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, a := range as {
		out = append(out, map[string]any{"sha256": a.SHA256, "size": a.Size, "name": a.Name, "media_type": a.MediaType,
			"own": a.Own, "uploaded": a.Uploaded, "refused": a.Refused, "path": a.Path})
	}
	return c.out.print(out, func(w io.Writer) {
		if len(as) == 0 {
			fmt.Fprintln(w, "no files on this phone (--fetch asks the server)")
			return
		}
		fmt.Fprintln(w, "NAME\tTYPE\tSIZE\tSTATE\tSHA-256")
		for _, a := range as {
			state := "fetched"
			switch {
			case a.Refused != "":
				state = "refused: " + a.Refused
			case a.Own && a.Uploaded:
				state = "uploaded"
			case a.Own:
				state = "to upload"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.MediaType, sizeText(a.Size), state, a.SHA256)
		}
	})
}

// sizeText is a size as people read it.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// attachmentList lists the files of visits, for an admin.
func (c *adminCmd) attachmentList(args []string) error {
	fs := c.flags("attachment list")
	var visits multi
	fs.Var(&visits, "visit", "visit `id` (repeat for several)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if len(visits) == 0 {
		return fmt.Errorf("%w: --visit is required", errUsage)
	}
	res, err := c.attachments.ListAttachments(c.ctx, &pb.ListAttachmentsRequest{VisitIds: visits})
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, a := range res.GetAttachments() {
		out = append(out, map[string]any{"visit_id": a.GetVisitId(), "sha256": a.GetSha256(), "size": a.GetSize(),
			"name": a.GetName(), "media_type": a.GetMediaType()})
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "VISIT\tNAME\tTYPE\tSIZE\tSHA-256")
		for _, a := range res.GetAttachments() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.GetVisitId(), a.GetName(), a.GetMediaType(), sizeText(int64(a.GetSize())), a.GetSha256())
		}
	})
}

// attachmentGet downloads one file, checked against its SHA-256.
func (c *adminCmd) attachmentGet(args []string) error {
	fs := c.flags("attachment get")
	sha := fs.String("sha256", "", "the file's `SHA-256` (from attachment list or the visit register)")
	out := fs.String("out", "", "output `file`")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(required("sha256", *sha), required("out", *out)); err != nil {
		return err
	}
	*sha = strings.ToLower(*sha)
	if err := syncengine.ValidateSHA256(*sha); err != nil {
		return fmt.Errorf("%w: --sha256: %v", errUsage, err)
	}
	stream, err := c.attachments.DownloadAttachment(c.ctx, &pb.DownloadAttachmentRequest{Sha256: *sha})
	if err != nil {
		return err
	}
	defer stream.Close()
	// Written beside the target and renamed once checked: a cut or wrong
	// download leaves no file under the name.
	file, err := os.CreateTemp(filepath.Dir(*out), ".attachment-*")
	if err != nil {
		return err
	}
	defer os.Remove(file.Name())
	defer file.Close()
	h := sha256.New()
	var n int64
	for stream.Receive() {
		data := stream.Msg().GetData()
		if n+int64(len(data)) > syncengine.MaxAttachmentBytes {
			return fmt.Errorf("the download runs past %s, more than a file may be: not kept", sizeText(syncengine.MaxAttachmentBytes))
		}
		if _, err := io.MultiWriter(file, h).Write(data); err != nil {
			return err
		}
		n += int64(len(data))
	}
	if err := stream.Err(); err != nil {
		return err
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != *sha {
		return fmt.Errorf("the download's SHA-256 is %s, not %s: not kept", got, *sha)
	}
	if err := file.Close(); err != nil {
		return err
	}
	if err := os.Rename(file.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "wrote %s to %s\n", sizeText(n), *out)
	return nil
}

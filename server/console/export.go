package console

import (
	"mime"
	"net/http"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

var (
	exportKinds = map[string]pb.ExportKind{
		"ledger": pb.ExportKind_EXPORT_KIND_LEDGER, "visits": pb.ExportKind_EXPORT_KIND_VISITS,
		"progress": pb.ExportKind_EXPORT_KIND_PROGRESS, "items": pb.ExportKind_EXPORT_KIND_ITEMS, "all": pb.ExportKind_EXPORT_KIND_ALL,
	}
	exportFormats = map[string]pb.ExportFormat{"csv": pb.ExportFormat_EXPORT_FORMAT_CSV, "xlsx": pb.ExportFormat_EXPORT_FORMAT_XLSX}
)

// export streams one of the API's exports to the browser as a download,
// as the API writes it: the file is never whole in the console's memory.
func (c *Console) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, ok1 := exportKinds[q.Get("kind")]
	format, ok2 := exportFormats[q.Get("format")]
	if !ok1 || !ok2 {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	language := pb.Language_LANGUAGE_ZH
	if q.Get("headers") == "en" {
		language = pb.Language_LANGUAGE_EN
	}
	stream, err := c.api.report.Export(r.Context(), &pb.ExportRequest{NodeId: q.Get("node"), CampaignId: q.Get("campaign"),
		Kind: kind, Format: format, Language: language})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	defer stream.Close()
	started := false
	for stream.Receive() {
		msg := stream.Msg()
		if !started {
			started = true
			w.Header().Set("Content-Type", msg.GetContentType())
			w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": msg.GetFilename()}))
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(msg.GetData()); err != nil {
			return // the browser went away
		}
	}
	switch err := stream.Err(); {
	case err == nil:
	case !started:
		c.apiError(w, r, err)
	default:
		// An error after the first bytes: net/http's way to cut the
		// response short, so that the browser reports the download failed
		// rather than keep a file that looks whole.
		panic(http.ErrAbortHandler)
	}
}

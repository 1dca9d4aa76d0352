package console

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/server/words"
)

// maxImportForm bounds the import form's body: the ledger file and the
// form's few fields.
const maxImportForm = ledger.MaxFileBytes + maxForm

// maxImportRowsShown bounds the rows an import's page lists (those that
// create, update or are refused): a street's first import creates
// 50,000, which no one reads in a browser; the counts say the rest.
const maxImportRowsShown = 1000

type importRowView struct {
	Line                           uint32
	Action, Household, What, Class string
}

// importPage shows the import form: a node, a ledger file, dry run or
// not.
func (c *Console) importPage(w http.ResponseWriter, r *http.Request) {
	c.renderImport(w, r, http.StatusOK, r.URL.Query().Get("node"), nil)
}

func (c *Console) renderImport(w http.ResponseWriter, r *http.Request, status int, node string, data map[string]any) {
	nodes, err := c.api.admin.ListOrgNodes(r.Context(), &pb.ListOrgNodesRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Nodes"] = nodeOptions(nodes.GetNodes(), node)
	c.render(w, r, status, "import", data)
}

// importLedger sends the file to LedgerService.ImportLedger and shows
// what each row did, or would do.
func (c *Console) importLedger(w http.ResponseWriter, r *http.Request) {
	node, dry := r.PostFormValue("node"), r.PostFormValue("dry_run") != ""
	f, hdr, err := r.FormFile("file")
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, ledger.MaxFileBytes+1))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "bad request")
		return
	}
	res, err := c.api.ledger.ImportLedger(r.Context(), &pb.ImportLedgerRequest{NodeId: node, FileName: hdr.Filename, File: data, DryRun: dry})
	if err != nil {
		// What is wrong with the file (no header row, too large) is the
		// clerk's to fix: the page says it, beside the form.
		if msg, ok := fileProblem(err); ok {
			c.renderImport(w, r, http.StatusBadRequest, node, map[string]any{"Problem": msg, "File": hdr.Filename})
			return
		}
		c.apiError(w, r, err)
		return
	}
	zh := lang(r) == "zh"
	var rows []importRowView
	hidden := 0
	for _, row := range res.GetRows() {
		if row.GetAction() == pb.ImportAction_IMPORT_ACTION_UNCHANGED {
			continue
		}
		if len(rows) == maxImportRowsShown {
			hidden++
			continue
		}
		v := importRowView{Line: row.GetLine(), Household: row.GetHouseholdId(),
			Action: words.Of(words.ImportAction, ledger.Action(row.GetAction()), zh),
			Class:  strings.ToLower(strings.TrimPrefix(row.GetAction().String(), "IMPORT_ACTION_"))}
		if row.GetAction() == pb.ImportAction_IMPORT_ACTION_REFUSE {
			v.What = words.Of(words.ImportRefusal, ledger.Refusal(row.GetRefusal()), zh)
			if row.GetDetail() != "" {
				v.What += ": " + row.GetDetail()
			}
		} else {
			v.What = importChanges(row, zh)
		}
		rows = append(rows, v)
	}
	c.renderImport(w, r, http.StatusOK, node, map[string]any{"Result": res, "Rows": rows, "Hidden": hidden, "DryRun": dry, "File": hdr.Filename})
}

// importChanges names the columns a row writes, as the ledger's headers
// do, and the persons and categories it adds.
func importChanges(row *pb.ImportRow, zh bool) string {
	var parts []string
	for _, name := range row.GetFields() {
		for f := ledger.FieldID; f.Name(false) != ""; f++ {
			if f.Name(false) == name {
				parts = append(parts, f.Name(zh))
			}
		}
	}
	sep := ", "
	if zh {
		sep = "、"
	}
	out := strings.Join(parts, sep)
	if n := row.GetResidenceChanges(); n > 0 {
		if out != "" {
			out += "; "
		}
		out += fmt.Sprint(pick(zh, "人口类别变更 ", "residence changed: "), n)
	}
	if n := row.GetPersonsAdded() + row.GetCategoriesAdded(); n > 0 {
		if out != "" {
			out += "; "
		}
		if zh {
			out += "新增成员 " + fmt.Sprint(row.GetPersonsAdded()) + " 人、类别 " + fmt.Sprint(row.GetCategoriesAdded()) + " 个"
		} else {
			out += "+" + fmt.Sprint(row.GetPersonsAdded()) + " persons, +" + fmt.Sprint(row.GetCategoriesAdded()) + " categories"
		}
	}
	return out
}

// fileProblem is what the API said is wrong with a file, if that is what
// err is.
func fileProblem(err error) (string, bool) {
	var ce *connect.Error
	if errors.As(err, &ce) && (ce.Code() == connect.CodeInvalidArgument || ce.Code() == connect.CodeResourceExhausted) {
		return ce.Message(), true
	}
	return "", false
}

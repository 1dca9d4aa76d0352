package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/server/words"
)

// importLedger sends an office's ledger file to be imported into a node's
// grids, or with --dry-run to say what it would do, and prints each row
// that creates, updates or is refused.
func (c *adminCmd) importLedger(args []string) error {
	fs := c.flags("import")
	node := fs.String("node", "", "the org node `id` whose grids the households go into")
	file := fs.String("file", "", "the ledger (.xlsx or .csv) `file`")
	dry := fs.Bool("dry-run", false, "say what each row would do; change nothing")
	all := fs.Bool("all", false, "print the unchanged rows too")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("node", *node); err != nil {
		return err
	}
	if err := required("file", *file); err != nil {
		return err
	}
	st, err := os.Stat(*file)
	if err != nil {
		return err
	}
	if st.Size() > ledger.MaxFileBytes {
		return fmt.Errorf("%s is %d bytes, over the import's limit of %d: import it in parts (a street at a time)", *file, st.Size(), ledger.MaxFileBytes)
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	res, err := c.ledger.ImportLedger(c.ctx, &pb.ImportLedgerRequest{NodeId: *node, FileName: filepath.Base(*file), File: data, DryRun: *dry})
	if err != nil {
		return err
	}
	return c.out.print(res, func(w io.Writer) {
		fmt.Fprintln(w, "LINE\tACTION\tHOUSEHOLD\tWHAT")
		for _, r := range res.GetRows() {
			if r.GetAction() == pb.ImportAction_IMPORT_ACTION_UNCHANGED && !*all {
				continue
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", r.GetLine(), words.Of(words.ImportAction, ledger.Action(r.GetAction()), false), r.GetHouseholdId(), importWhat(r))
		}
		fmt.Fprintf(w, "\n%d rows: %d to create, %d to update, %d unchanged, %d refused; %d persons and %d categories to add\n",
			len(res.GetRows()), res.GetCreated(), res.GetUpdated(), res.GetUnchanged(), res.GetRefused(), res.GetPersonsAdded(), res.GetCategoriesAdded())
		if len(res.GetUnknownColumns()) > 0 {
			fmt.Fprintf(w, "columns not read: %s\n", strings.Join(res.GetUnknownColumns(), ", "))
		}
		switch {
		case *dry:
			fmt.Fprintln(w, "dry run: nothing was written")
		case res.GetApplied():
			fmt.Fprintln(w, "written, in one transaction")
		default:
			fmt.Fprintln(w, "nothing to write")
		}
	})
}

// importWhat says what a row writes, or why it is refused.
func importWhat(r *pb.ImportRow) string {
	if r.GetAction() == pb.ImportAction_IMPORT_ACTION_REFUSE {
		s := words.Of(words.ImportRefusal, ledger.Refusal(r.GetRefusal()), false)
		if r.GetDetail() != "" {
			s += ": " + r.GetDetail()
		}
		return s
	}
	parts := []string{}
	if len(r.GetFields()) > 0 {
		parts = append(parts, strings.Join(r.GetFields(), ", "))
	}
	if n := r.GetPersonsAdded(); n > 0 {
		parts = append(parts, fmt.Sprintf("+%d persons", n))
	}
	if n := r.GetCategoriesAdded(); n > 0 {
		parts = append(parts, fmt.Sprintf("+%d categories", n))
	}
	if n := r.GetResidenceChanges(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d persons' residence", n))
	}
	return strings.Join(parts, "; ")
}

package ledger_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/syncengine"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
)

// FuzzRead reads any file as a ledger and plans it: no panic, errors of
// the two kinds Read documents, rows in file order, and what a plan
// writes is what a phone accepts.
func FuzzRead(f *testing.F) {
	h := ledger.Header(true)
	f.Add(writeCSV(f, officeLedger(), csvOptions{}), "台账.csv")
	f.Add(writeCSV(f, officeLedger(), csvOptions{bom: true, crlf: true}), "台账.csv")
	f.Add(writeCSV(f, officeLedger(), csvOptions{enc: simplifiedchinese.GB18030}), "台账.csv")
	f.Add(writeCSV(f, officeLedger(), csvOptions{enc: unicode.UTF16(unicode.LittleEndian, unicode.UseBOM), comma: '\t', pad: true}), "台账.txt")
	f.Add(ledgerCSV(f,
		cells{ledger.FieldID: hZhang, ledger.FieldMobile: "+86 139 0000 0000", ledger.FieldPersons: "王小二、李 四"},
		cells{ledger.FieldGrid: "第二网格", ledger.FieldHead: "赵六", ledger.FieldMembers: "3人", ledger.FieldCategories: "独居老人"},
		cells{ledger.FieldGrid: "第一网格", ledger.FieldHead: "王五", ledger.FieldLandline: "(0571)88886666"},
		cells{ledger.FieldID: "bad", ledger.FieldHead: "x"},
	), "ledger.csv")
	f.Add([]byte("Head of household,Address,Grid,Household ID\nLi Lei,\"Building 3, Room 201\",第一网格,\n"), "x.csv")
	f.Add([]byte(strings.Join(h, "\t")+"\n\t\t第二网格\t张三\n"), "")
	f.Add(workbook(f, officeSheet("台账")), "台账.xlsx")
	f.Add([]byte("PK\x03\x04"), "台账.xlsx")
	f.Add([]byte{0xD0, 0xCF, 0x11, 0xE0}, "台账.xls")
	f.Fuzz(checkRead)
}

// checkRead reads data as a file named name, and plans it.
func checkRead(t *testing.T, data []byte, name string) {
	tb, err := ledger.Read(data, name)
	if err != nil {
		if !errors.Is(err, syncengine.ErrInvalid) && !errors.Is(err, syncengine.ErrLimit) {
			t.Fatalf("Read's error %v is neither ErrInvalid nor ErrLimit", err)
		}
		if tb != nil {
			t.Fatal("Read gave a table with its error")
		}
		return
	}
	if !tb.Has[ledger.FieldHead] && !tb.Has[ledger.FieldID] {
		t.Fatalf("a table without a head or an id column: %+v", tb.Has)
	}
	if len(tb.Rows) > ledger.MaxRows {
		t.Fatalf("%d rows", len(tb.Rows))
	}
	line := 0
	for _, r := range tb.Rows {
		if r.Line <= line {
			t.Fatalf("row on line %d after line %d", r.Line, line)
		}
		line = r.Line
		empty := true
		for f, c := range r.Cells {
			if c != strings.TrimSpace(c) {
				t.Fatalf("line %d: cell %q not trimmed", r.Line, c)
			}
			if c != "" {
				empty = false
				if !tb.Has[f] {
					t.Fatalf("line %d: a cell %q of a field without a column", r.Line, c)
				}
			}
		}
		if empty {
			t.Fatalf("line %d: an empty row", r.Line)
		}
	}

	out := ledger.Plan(tb, setting())
	if len(out) != len(tb.Rows) {
		t.Fatalf("%d outcomes of %d rows", len(out), len(tb.Rows))
	}
	for i, o := range out {
		if o.Line != tb.Rows[i].Line {
			t.Fatalf("outcome %d is of line %d, the row of line %d", i, o.Line, tb.Rows[i].Line)
		}
		switch o.Action {
		case ledger.Create, ledger.Update, ledger.Unchanged:
			if o.Refusal != 0 {
				t.Fatalf("line %d: action %d with refusal %d", o.Line, o.Action, o.Refusal)
			}
		case ledger.Refuse:
			if o.Refusal < ledger.RefusalBadID || o.Refusal > ledger.RefusalInvalid {
				t.Fatalf("line %d: refusal %d", o.Line, o.Refusal)
			}
		default:
			t.Fatalf("line %d: action %d", o.Line, o.Action)
		}
		if o.HouseholdID != "" && !syncengine.IsID(o.HouseholdID) {
			t.Fatalf("line %d: household %q", o.Line, o.HouseholdID)
		}
		b := o.Rows(uuid(0x999), newIDs(0x1000), clocks(1000))
		if err := b.Validate(); err != nil {
			t.Fatalf("line %d: Rows: %v", o.Line, err)
		}
		n := b.Rows()
		switch {
		case o.Action == ledger.Create && len(b.Households) != 1:
			t.Fatalf("line %d: a creation writes %d households", o.Line, len(b.Households))
		case o.Action == ledger.Update && n == 0:
			t.Fatalf("line %d: an update writes nothing", o.Line)
		case (o.Action == ledger.Unchanged || o.Action == ledger.Refuse) && n != 0:
			t.Fatalf("line %d: action %d writes %d rows", o.Line, o.Action, n)
		}
	}
}

// FuzzPhone: what Mobile and Landline write, they read as it is, and they
// accept only digits and dashes in it.
func FuzzPhone(f *testing.F) {
	for _, s := range []string{"138 0013 8000", "+86 138-0013-8000", "8613800138000", "0571-88886666", "(0571)88886666",
		"057188886666", "01088886666", "88886666", "0571-88886666-123", "123", "0571-0888666", "abc", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []struct {
			name string
			fn   func(string) (string, bool)
		}{{"Mobile", ledger.Mobile}, {"Landline", ledger.Landline}} {
			got, ok := p.fn(s)
			if !ok {
				if got != "" {
					t.Fatalf("%s(%q) = %q, false", p.name, s, got)
				}
				continue
			}
			if strings.Trim(got, "0123456789-") != "" {
				t.Fatalf("%s(%q) = %q", p.name, s, got)
			}
			if again, ok := p.fn(got); !ok || again != got {
				t.Fatalf("%s(%q) = %q, but %s(%q) = %q, %v", p.name, s, got, p.name, got, again, ok)
			}
		}
	})
}

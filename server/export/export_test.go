package export

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/xuri/excelize/v2"
)

// want is what a user opening the file sees in a cell, and whether the
// cell is a number.
type want struct {
	text   string
	number bool
}

type hostileSheet struct {
	name   string
	header []string
	rows   [][]any
	want   [][]want // the header first
}

func txt(s string) want { return want{text: s} }
func num(s string) want { return want{text: s, number: true} }

// hostileSheets are written through the real writers by both tests below.
func hostileSheets() []hostileSheet {
	day := time.Date(2024, 5, 1, 9, 30, 0, 0, time.FixedZone("CST", 8*3600))
	return []hostileSheet{{
		name:   "台账",
		header: []string{"=户编号", "地址", "人口数"},
		rows: [][]any{
			{`=HYPERLINK("http://evil","x")`, "张伟", -3},
			{`+cmd|' /C calc'!A0`, "和平路1号3单元", 2.5},
			{"-2+3", "@SUM(1)", int64(9)},
			{"\t=1", "\r=1", uint32(4)},
			{"a\x00\x07\x1bb", "张伟\u202egpj.exe", day},
			{"\u202e=1", "第一行\r\n第二行", time.Time{}},
			{"+8613800000000", "_x0007_", math.NaN()},
			{"\x7f\u0085x", "a\tb\x0b", ""},
			{"  =1", "\u3000-1", math.Inf(-1)},
			{"13800138000", "2024-05-01", 66.7},
			{"a\xffb", "\u2066@x\u2069", nil},
		},
		want: [][]want{
			{txt("'=户编号"), txt("地址"), txt("人口数")},
			{txt(`'=HYPERLINK("http://evil","x")`), txt("张伟"), num("-3")},
			{txt(`'+cmd|' /C calc'!A0`), txt("和平路1号3单元"), num("2.5")},
			{txt("'-2+3"), txt("'@SUM(1)"), num("9")},
			{txt("' =1"), txt("'\n=1"), num("4")},
			{txt("ab"), txt("张伟gpj.exe"), num("2024-05-01")}, // a date: a number shown as one
			{txt("'=1"), txt("第一行\n第二行"), txt("")},
			{txt("'+8613800000000"), txt("_x0007_"), txt("NaN")},
			{txt("x"), txt("a b"), txt("")},
			{txt("'  =1"), txt("'\u3000-1"), txt("'-Inf")},
			{txt("13800138000"), txt("2024-05-01"), num("66.7")},
			{txt("a\ufffdb"), txt("'@x"), txt("")},
		},
	}, {
		name:   "-走访",
		header: []string{"走访人", "\x1b[2J民情日记"},
		rows:   [][]any{{"李明", "@李明 上门\u202d"}},
		want: [][]want{
			{txt("走访人"), txt("[2J民情日记")},
			{txt("李明"), txt("'@李明 上门")},
		},
	}}
}

func writeSheets(t *testing.T, w Writer, sheets []hostileSheet) {
	t.Helper()
	for _, s := range sheets {
		if err := w.Sheet(s.name, s.header); err != nil {
			t.Fatalf("sheet %s: %v", s.name, err)
		}
		for _, r := range s.rows {
			if err := w.Row(r...); err != nil {
				t.Fatalf("sheet %s row %q: %v", s.name, r, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkSeen asserts what a user would see in a text cell: nothing a
// spreadsheet reads as a formula, no control or bidi characters.
func checkSeen(t *testing.T, where, got string) {
	t.Helper()
	if s := strings.TrimLeftFunc(got, unicode.IsSpace); s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		t.Errorf("%s: %q starts a formula", where, got)
	}
	for _, r := range got {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			t.Errorf("%s: %q holds control character %U", where, got, r)
		}
	}
}

func TestExportCSVOpensSafely(t *testing.T) {
	sheets := hostileSheets()
	var buf bytes.Buffer
	writeSheets(t, NewCSV(&buf), sheets)
	data := buf.Bytes()

	if !bytes.HasPrefix(data, []byte("\ufeff")) {
		t.Errorf("CSV starts with %q, want a byte order mark", data[:min(len(data), 8)])
	}
	for i, b := range data {
		if b < 0x20 && b != '\n' {
			t.Errorf("CSV byte %d is control character %#x", i, b)
		}
	}

	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read the CSV back: %v\n%s", err, data)
	}
	// Sheets after the first follow their name (the empty line between
	// them is skipped by the reader).
	var wantRecords [][]want
	for i, s := range sheets {
		if i > 0 {
			wantRecords = append(wantRecords, []want{txt("'" + s.name)})
		}
		wantRecords = append(wantRecords, s.want...)
	}
	if len(records) != len(wantRecords) {
		t.Fatalf("CSV has %d records, want %d:\n%q", len(records), len(wantRecords), records)
	}
	for i, rec := range records {
		if len(rec) != len(wantRecords[i]) {
			t.Errorf("record %d has %d fields, want %d: %q", i, len(rec), len(wantRecords[i]), rec)
			continue
		}
		for j, got := range rec {
			w := wantRecords[i][j]
			if got != w.text {
				t.Errorf("record %d field %d: %q, want %q", i, j, got, w.text)
			}
			if !w.number {
				checkSeen(t, fmt.Sprintf("CSV record %d field %d", i, j), got)
			}
		}
	}
}

func TestExportXLSXOpensSafely(t *testing.T) {
	sheets := hostileSheets()
	var buf bytes.Buffer
	writeSheets(t, NewXLSX(&buf), sheets)
	data := buf.Bytes()

	checkXLSXParts(t, data)

	book, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("open the workbook (%d bytes): %v", len(data), err)
	}
	defer book.Close()
	var names []string
	for _, s := range sheets {
		names = append(names, s.name)
	}
	if got := book.GetSheetList(); !slices.Equal(got, names) {
		t.Errorf("sheets %q, want %q", got, names)
	}
	for _, s := range sheets {
		rows, err := book.GetRows(s.name)
		if err != nil {
			t.Fatalf("sheet %s: %v", s.name, err)
		}
		if len(rows) != len(s.want) {
			t.Errorf("sheet %s has %d rows, want %d: %q", s.name, len(rows), len(s.want), rows)
		}
		for i, row := range s.want {
			if i < len(rows) && len(rows[i]) > len(row) {
				t.Errorf("sheet %s row %d has %d cells, want %d: %q", s.name, i+1, len(rows[i]), len(row), rows[i])
			}
			for j, w := range row {
				cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
				where := s.name + "!" + cell
				got, err := book.GetCellValue(s.name, cell)
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if got != w.text {
					t.Errorf("%s: %q, want %q", where, got, w.text)
				}
				if f, err := book.GetCellFormula(s.name, cell); err != nil || f != "" {
					t.Errorf("%s: formula %q (%v), want none", where, f, err)
				}
				typ, err := book.GetCellType(s.name, cell)
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				switch {
				case w.number && typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber:
					t.Errorf("%s: type %v, want a number", where, typ)
				case !w.number && got != "" && typ != excelize.CellTypeInlineString:
					t.Errorf("%s: type %v, want an inline string", where, typ)
				}
				if !w.number {
					checkSeen(t, where, got)
				}
			}
		}
	}
}

// checkXLSXParts parses every XML part of the workbook strictly, as Excel
// would: a control character XML cannot hold makes Excel refuse the whole
// file, while excelize reads it regardless. No worksheet may hold a formula.
func checkXLSXParts(t *testing.T, data []byte) {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("the workbook is not a zip: %v", err)
	}
	sheets := 0
	for _, f := range z.File {
		if !strings.HasSuffix(f.Name, ".xml") && !strings.HasSuffix(f.Name, ".rels") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		isSheet := strings.HasPrefix(f.Name, "xl/worksheets/")
		if isSheet {
			sheets++
		}
		d := xml.NewDecoder(rc)
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s is not well-formed XML: %v", f.Name, err)
				break
			}
			if se, ok := tok.(xml.StartElement); ok && isSheet && se.Name.Local == "f" {
				t.Errorf("%s holds a formula element", f.Name)
			}
		}
		rc.Close()
	}
	if sheets == 0 {
		t.Error("the workbook has no worksheet parts")
	}
}

// largestWrite remembers the most bytes one Write was given.
type largestWrite struct {
	bytes.Buffer
	most int
}

func (w *largestWrite) Write(p []byte) (int, error) {
	w.most = max(w.most, len(p))
	return w.Buffer.Write(p)
}

// TestExportXLSXStreams: a workbook goes out as its zip is made, not
// built whole in memory and written at once (excelize's WriteTo), and
// opens.
func TestExportXLSXStreams(t *testing.T) {
	out := &largestWrite{}
	x := NewXLSX(out)
	if err := x.Sheet("台账", []string{"户号", "户主", "地址"}); err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		if err := x.Row(fmt.Sprintf("h%06d", i), fmt.Sprintf("户主%d", i), fmt.Sprintf("和平路%d号", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if out.most > out.Len()/4 {
		t.Errorf("the largest write was %d bytes of a %d-byte workbook: it was built whole first", out.most, out.Len())
	}
	book, err := excelize.OpenReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	if v, err := book.GetCellValue("台账", "B20001"); err != nil || v != "户主19999" {
		t.Errorf("B20001 = %q, %v; want 户主19999", v, err)
	}
}

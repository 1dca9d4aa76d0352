package export

import (
	"bytes"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// TestXLSXLooksLikeAnOfficeLedger: a sheet as a clerk hands it upward: a
// bold title row across the columns, a bold header with a fill frozen
// under it, filter buttons (a table), columns as wide as their Chinese
// text, dates as dates, shares as percentages, phone numbers as text.
func TestXLSXLooksLikeAnOfficeLedger(t *testing.T) {
	var buf bytes.Buffer
	w := NewXLSX(&buf)
	w.(Titled).Title("和平街道 · 平安大走访 · 截至 2026-12-03 10:00")
	if err := w.Sheet("台账", []string{"户主姓名", "地址", "手机", "最近走访", "覆盖率", "人口数"}); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 3, 15, 4, 5, 0, time.FixedZone("CST", 8*3600))
	rows := [][]any{
		{"张伟", "和平路1号院3单元402室（老小区，无电梯）", "13800000000", day, Percent(0.667), 3},
		{"李娜", "和平路2号", "01062345678", time.Time{}, Percent(1), 1},
	}
	for _, r := range rows {
		if err := w.Row(r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const sheet = "台账"
	value := func(cell string, raw bool) string {
		t.Helper()
		v, err := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: raw})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	style := func(cell string) *excelize.Style {
		t.Helper()
		id, err := f.GetCellStyle(sheet, cell)
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.GetStyle(id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := value("A1", false); got != "和平街道 · 平安大走访 · 截至 2026-12-03 10:00" || !style("A1").Font.Bold {
		t.Errorf("title row: %q, bold %v", got, style("A1").Font.Bold)
	}
	merged, err := f.GetMergeCells(sheet)
	if err != nil || len(merged) != 1 || merged[0].GetStartAxis() != "A1" || merged[0].GetEndAxis() != "F1" {
		t.Errorf("the title is not merged across the columns: %v (%v)", merged, err)
	}
	if h := style("B2"); value("B2", false) != "地址" || h.Font == nil || !h.Font.Bold || len(h.Fill.Color) == 0 {
		t.Errorf("header cell B2: %q, style %+v", value("B2", false), h)
	}
	panes, err := f.GetPanes(sheet)
	if err != nil || !panes.Freeze || panes.YSplit != 2 {
		t.Errorf("panes %+v (%v), want frozen under the header (row 2)", panes, err)
	}
	tables, err := f.GetTables(sheet)
	if err != nil || len(tables) != 1 || tables[0].Range != "A2:F4" {
		t.Errorf("tables %+v (%v), want one over A2:F4 (its header has the filters)", tables, err)
	}
	// Widths: the long Chinese address in full, each character two
	// columns wide (39 columns, and a margin).
	if w, err := f.GetColWidth(sheet, "B"); err != nil || w != 41 {
		t.Errorf("address column width %v (%v), want 41 for the address", w, err)
	}
	if w, err := f.GetColWidth(sheet, "A"); err != nil || w < 10 || w > 12 {
		t.Errorf("name column width %v (%v), want about 10", w, err)
	}
	// A date is a date (a serial number shown as a date), a share a
	// percentage, a phone number text, a count a number.
	if raw, shown := value("D3", true), value("D3", false); raw != "46359" || shown != "2026-12-03" {
		t.Errorf("date cell: raw %q shown %q, want 46359 shown as 2026-12-03", raw, shown)
	}
	if value("D4", true) != "" {
		t.Errorf("no date: %q, want an empty cell", value("D4", true))
	}
	if raw, shown := value("E3", true), value("E3", false); raw != "0.667" || shown != "66.7%" {
		t.Errorf("share cell: raw %q shown %q, want 0.667 shown as 66.7%%", raw, shown)
	}
	if typ, err := f.GetCellType(sheet, "C3"); err != nil || (typ != excelize.CellTypeSharedString && typ != excelize.CellTypeInlineString) ||
		value("C4", false) != "01062345678" || style("C3").CustomNumFmt == nil || *style("C3").CustomNumFmt != "@" {
		t.Errorf("phone cell: type %v (%v), %q; want text, leading zero kept, formatted as text", typ, err, value("C4", false))
	}
	if typ, _ := f.GetCellType(sheet, "F3"); typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
		t.Errorf("count cell type %v, want a number", typ)
	}
}

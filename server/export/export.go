// Package export writes tables as CSV or as an .xlsx workbook, row by row,
// so that a district's ledger streams out without being held in memory
// (excelize's stream writer spills large sheets to a temporary file).
package export

import (
	"archive/zip"
	"compress/flate"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/xuri/excelize/v2"
)

// Writer writes sheets one after another; Close finishes the file.
type Writer interface {
	// Sheet starts a new sheet with a header row.
	Sheet(name string, header []string) error
	// Row appends a row to the current sheet: strings, integers, floats
	// and times (written as dates). Text, headers included, is written as
	// safeText makes it, so both formats show the same thing.
	Row(values ...any) error
	Close() error
}

// ContentType and extension of each format.
const (
	CSVType  = "text/csv; charset=utf-8"
	XLSXType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

type csvWriter struct {
	w      *csv.Writer
	sheets int
}

// NewCSV writes CSV to w, with a UTF-8 byte order mark so that Excel reads
// Chinese text right. Sheets after the first follow their predecessor after
// an empty line and their name.
func NewCSV(w io.Writer) Writer {
	return &csvWriter{w: csv.NewWriter(w)}
}

var bom = []string{"\ufeff"}

func (c *csvWriter) Sheet(name string, header []string) error {
	if c.sheets > 0 {
		if err := c.w.Write([]string{}); err != nil {
			return err
		}
		if err := c.w.Write([]string{safeText(name)}); err != nil {
			return err
		}
	}
	row := make([]string, len(header))
	for i, h := range header {
		row[i] = safeText(h)
	}
	if c.sheets == 0 && len(row) > 0 {
		row[0] = bom[0] + row[0]
	}
	c.sheets++
	return c.w.Write(row)
}

func (c *csvWriter) Row(values ...any) error {
	row := make([]string, len(values))
	for i, v := range values {
		row[i] = text(v)
	}
	return c.w.Write(row)
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	return c.w.Error()
}

// text is a value as the CSV writes it, and as the workbook writes all
// but numbers.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return safeText(v)
	case []byte:
		return safeText(string(v))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	case float32:
		return float(float64(v), 32)
	case float64:
		return float(v, 64)
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.Format("2006-01-02")
	case Percent:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return ""
		}
		return strconv.FormatFloat(100*float64(v), 'f', 1, 64) + "%"
	case nil:
		return ""
	}
	// Whatever else a caller passes prints as text, and text may be anyone's.
	return safeText(fmt.Sprint(v))
}

// float spells a float; "-Inf" would read as a formula, so the non-finite
// ones go through safeText like any text.
func float(f float64, bits int) string {
	s := strconv.FormatFloat(f, 'f', -1, bits)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return safeText(s)
	}
	return s
}

// number reports whether the workbook writes v as a number. A number is
// the server's own figure, never typed text, so it needs no neutralising:
// -3 in a cell is the number -3, not a formula. NaN and the infinities have
// no spelling in a workbook's number cell and go as text.
func number(v any) bool {
	switch v := v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return true
	case float32:
		return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
	case float64:
		return !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	return false
}

type xlsxWriter struct {
	out    io.Writer
	f      *excelize.File
	sw     *excelize.StreamWriter
	row    int
	first  bool
	title  string
	styles xlsxStyles
	// The current sheet: its header, and its first rows, held until
	// there are enough of them to size the columns by (or the sheet
	// ends).
	header  []string
	pending [][]any
	flowing bool
	tables  int
}

// xlsxStyles are the cell styles of a workbook an office hands upward.
type xlsxStyles struct {
	title, header, date, percent, text int
}

// NewXLSX writes an .xlsx workbook to w when closed. Each sheet has a
// title row (see Titled) if one was set, a bold header row frozen above
// the rows and filterable, columns as wide as their text, dates as dates,
// percentages as percentages and text as text.
func NewXLSX(w io.Writer) Writer {
	f := excelize.NewFile()
	// The workbook's zip goes to w as it is made: excelize would build it
	// whole in a buffer first, and copy it to w after (158 MiB at the peak
	// of a district's ledger, 66 MiB since). Its sheets are deflated when
	// it closes, after every row is read, at level 3 rather than 6: a
	// district's ledger in 9.2 s rather than 10.2–11.2, for a file 9%
	// larger (25.5 MiB rather than 23.4). excelize marks a part of over
	// 4 GiB as zip64 by patching its buffer, which is empty here: no sheet
	// comes near (a district's ledger is 25 MiB).
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) { return flate.NewWriter(out, 3) })
		return zw
	})
	return &xlsxWriter{out: w, f: f, first: true}
}

// Percent is a share (0.5 is half): a workbook shows it as 50.0%, a CSV
// file as 50.0%.
type Percent float64

// Titled is a Writer that puts a title above the header of the sheets
// that follow (the node, the campaign, the date): a workbook's first row.
// A CSV file has no room for one and ignores it.
type Titled interface {
	Title(title string)
}

func (c *csvWriter) Title(string) {}

func (x *xlsxWriter) Title(title string) { x.title = safeText(title) }

// sampleRows is how many rows a sheet's column widths are taken from.
const sampleRows = 200

func (x *xlsxWriter) makeStyles() error {
	if x.styles.header != 0 {
		return nil
	}
	dateFmt, percentFmt, textFmt := "yyyy-mm-dd", "0.0%", "@"
	border := []excelize.Border{{Type: "bottom", Color: "999999", Style: 1}}
	for _, s := range []struct {
		id    *int
		style excelize.Style
	}{
		{&x.styles.title, excelize.Style{Font: &excelize.Font{Bold: true, Size: 14}}},
		{&x.styles.header, excelize.Style{Font: &excelize.Font{Bold: true}, Border: border,
			Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"E8EDF2"}},
			Alignment: &excelize.Alignment{Vertical: "center", WrapText: true}}},
		{&x.styles.date, excelize.Style{CustomNumFmt: &dateFmt}},
		{&x.styles.percent, excelize.Style{CustomNumFmt: &percentFmt}},
		{&x.styles.text, excelize.Style{CustomNumFmt: &textFmt}},
	} {
		id, err := x.f.NewStyle(&s.style)
		if err != nil {
			return err
		}
		*s.id = id
	}
	return nil
}

func (x *xlsxWriter) Sheet(name string, header []string) error {
	if err := x.endSheet(); err != nil {
		return err
	}
	if err := x.makeStyles(); err != nil {
		return err
	}
	if x.first {
		// A new file has one empty sheet: name it rather than add one.
		if err := x.f.SetSheetName(x.f.GetSheetName(0), name); err != nil {
			return err
		}
		x.first = false
	} else if _, err := x.f.NewSheet(name); err != nil {
		return err
	}
	sw, err := x.f.NewStreamWriter(name)
	if err != nil {
		return err
	}
	x.sw, x.row, x.flowing, x.pending = sw, 0, false, nil
	x.header = make([]string, len(header))
	for i, h := range header {
		x.header[i] = safeText(h)
	}
	return nil
}

func (x *xlsxWriter) Row(values ...any) error {
	if x.sw == nil {
		return errors.New("export: a row before any sheet")
	}
	if x.flowing {
		return x.writeRow(values)
	}
	x.pending = append(x.pending, values)
	if len(x.pending) == sampleRows {
		return x.startFlow()
	}
	return nil
}

// startFlow sizes the columns from the header and the rows held, writes
// the title and the header, then the rows held; rows after flow straight
// to the sheet.
func (x *xlsxWriter) startFlow() error {
	x.flowing = true
	width := make([]int, len(x.header))
	for i, h := range x.header {
		width[i] = displayWidth(h)
	}
	for _, r := range x.pending {
		for i, v := range r {
			if i < len(width) && v != nil {
				width[i] = max(width[i], displayWidth(text(v)))
			}
		}
	}
	for i, w := range width {
		if err := x.sw.SetColWidth(i+1, i+1, float64(min(max(w+2, 8), 60))); err != nil {
			return err
		}
	}
	headerRow := 1
	if x.title != "" {
		headerRow = 2
	}
	if err := x.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: headerRow, TopLeftCell: fmt.Sprintf("A%d", headerRow+1), ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	if x.title != "" {
		x.row++
		if err := x.sw.SetRow("A1", []any{excelize.Cell{StyleID: x.styles.title, Value: x.title}}, excelize.RowOpts{Height: 24}); err != nil {
			return err
		}
		if len(x.header) > 1 {
			last, _ := excelize.CoordinatesToCellName(len(x.header), 1)
			if err := x.sw.MergeCell("A1", last); err != nil {
				return err
			}
		}
	}
	x.row++
	cells := make([]any, len(x.header))
	for i, h := range x.header {
		cells[i] = excelize.Cell{StyleID: x.styles.header, Value: h}
	}
	cell, _ := excelize.CoordinatesToCellName(1, x.row)
	if err := x.sw.SetRow(cell, cells, excelize.RowOpts{Height: 20}); err != nil {
		return err
	}
	for _, r := range x.pending {
		if err := x.writeRow(r); err != nil {
			return err
		}
	}
	x.pending = nil
	return nil
}

func (x *xlsxWriter) writeRow(values []any) error {
	x.row++
	cells := make([]any, len(values))
	for i, v := range values {
		// Never a value a caller made into an excelize.Cell, so no cell
		// carries a formula whatever a caller passes: each value becomes a
		// number, a date, a percentage or text here.
		switch v := v.(type) {
		case nil:
			// nil leaves the cell out.
		case Percent:
			if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
				cells[i] = excelize.Cell{StyleID: x.styles.percent, Value: f}
			}
		case time.Time:
			if !v.IsZero() {
				// The date as the offices wrote it, without a zone.
				cells[i] = excelize.Cell{StyleID: x.styles.date, Value: time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)}
			}
		default:
			if number(v) {
				cells[i] = v
			} else {
				cells[i] = excelize.Cell{StyleID: x.styles.text, Value: text(v)}
			}
		}
	}
	cell, err := excelize.CoordinatesToCellName(1, x.row)
	if err != nil {
		return err
	}
	return x.sw.SetRow(cell, cells)
}

// endSheet writes what the current sheet holds, makes its rows a table
// (whose header has the filter buttons), and flushes it.
func (x *xlsxWriter) endSheet() error {
	if x.sw == nil {
		return nil
	}
	if !x.flowing {
		if err := x.startFlow(); err != nil {
			return err
		}
	}
	headerRow := x.row - x.dataRows()
	if x.dataRows() > 0 && len(x.header) > 0 && tableHeader(x.header) {
		x.tables++
		last, _ := excelize.CoordinatesToCellName(len(x.header), x.row)
		first, _ := excelize.CoordinatesToCellName(1, headerRow)
		stripes := true
		if err := x.sw.AddTable(&excelize.Table{Range: first + ":" + last, Name: fmt.Sprintf("Table%d", x.tables),
			StyleName: "TableStyleLight1", ShowRowStripes: &stripes}); err != nil {
			return err
		}
	}
	err := x.sw.Flush()
	x.sw = nil
	return err
}

// dataRows is how many rows under the header the current sheet has.
func (x *xlsxWriter) dataRows() int {
	n := x.row - 1
	if x.title != "" {
		n--
	}
	return max(n, 0)
}

// tableHeader reports whether a header can head a table: Excel wants its
// names non-empty and distinct.
func tableHeader(h []string) bool {
	seen := map[string]bool{}
	for _, n := range h {
		k := strings.ToLower(strings.TrimSpace(n))
		if k == "" || seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// displayWidth is how many columns of a spreadsheet's default font text
// takes: two for a Chinese character, one for the rest.
func displayWidth(s string) int {
	w := 0
	for _, r := range s {
		if r >= 0x1100 && (unicode.Is(unicode.Han, r) || unicode.In(r, unicode.Hangul, unicode.Hiragana, unicode.Katakana) ||
			(r >= 0x3000 && r <= 0x303f) || (r >= 0xff00 && r <= 0xffef)) {
			w += 2
		} else {
			w++
		}
	}
	return w
}

func (x *xlsxWriter) Close() error {
	err := x.endSheet()
	if err == nil {
		_, err = x.f.WriteTo(x.out)
	}
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Package export writes tables as CSV or as an .xlsx workbook, row by row,
// so that a district's ledger streams out without being held in memory
// (excelize's stream writer spills large sheets to a temporary file).
package export

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

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
	out   io.Writer
	f     *excelize.File
	sw    *excelize.StreamWriter
	row   int
	first bool
}

// NewXLSX writes an .xlsx workbook to w when closed.
func NewXLSX(w io.Writer) Writer {
	return &xlsxWriter{out: w, f: excelize.NewFile(), first: true}
}

func (x *xlsxWriter) Sheet(name string, header []string) error {
	if err := x.flush(); err != nil {
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
	x.sw, x.row = sw, 0
	values := make([]any, len(header))
	for i, h := range header {
		values[i] = h
	}
	return x.Row(values...)
}

func (x *xlsxWriter) Row(values ...any) error {
	if x.sw == nil {
		return errors.New("export: a row before any sheet")
	}
	x.row++
	cells := make([]any, len(values))
	for i, v := range values {
		switch {
		case v == nil:
			// nil leaves the cell out.
		case number(v):
			cells[i] = v
		default:
			// Always a plain string, never an excelize.Cell, so no cell
			// carries a formula whatever a caller passes; a date goes as
			// the offices write it, not as a serial number.
			cells[i] = text(v)
		}
	}
	cell, err := excelize.CoordinatesToCellName(1, x.row)
	if err != nil {
		return err
	}
	return x.sw.SetRow(cell, cells)
}

func (x *xlsxWriter) flush() error {
	if x.sw == nil {
		return nil
	}
	err := x.sw.Flush()
	x.sw = nil
	return err
}

func (x *xlsxWriter) Close() error {
	err := x.flush()
	if err == nil {
		_, err = x.f.WriteTo(x.out)
	}
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}

package ledger

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/doorbook/doorbook/syncengine"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Limits of a ledger file. A street's ledger (50,000 households) is about
// 5 MiB as .csv; a district imports street by street.
const (
	// MaxFileBytes bounds the file as sent.
	MaxFileBytes = 32 << 20
	// MaxRows bounds the households of one file: a street's (50,000) and
	// some. The import holds the file's rows, the node's households and
	// what it writes in memory at once, about 5 KiB a household at its
	// peak (BENCHMARKS.md).
	MaxRows = 60_000
	// maxColumns bounds the columns read of a row; a ledger has 14.
	maxColumns = 64
	// headerRows is how far down the header row may be: title rows (the
	// node, the campaign, the date) come above it.
	headerRows = 10
	// maxUnzipped bounds what an .xlsx inflates to, all parts together: a
	// street's sheet is about 40 MiB of XML, and a zip bomb stops here.
	maxUnzipped = 160 << 20
	// maxXMLInMemory is the largest part excelize keeps in memory; larger
	// ones go to a temporary file.
	maxXMLInMemory = 16 << 20
)

// Table is a ledger as read: which column is which field, and the rows
// under the header.
type Table struct {
	// Sheet is the sheet read (of an .xlsx), or "".
	Sheet string
	// Unknown are the header cells that name no field: their columns are
	// not read.
	Unknown []string
	// Has tells which fields have a column.
	Has [numFields]bool
	// Rows are the non-empty rows under the header.
	Rows []Row
}

// Row is one row of the file.
type Row struct {
	// Line is the row's number in the file (1 is the first line or the
	// sheet's first row), as the clerk sees it.
	Line  int
	Cells [numFields]string
}

// Read reads a ledger from an .xlsx or .csv file named name (the name
// only tells the format when the bytes do not: an .xlsx is a zip). A CSV
// may be UTF-8 (with or without a byte-order mark), UTF-16 with a mark
// (Excel's "Unicode text", tab-separated), or GB18030/GBK (what Excel
// writes on a Chinese system); comma- or tab-separated.
//
// Its errors wrap syncengine.ErrInvalid, or syncengine.ErrLimit for a
// file over the limits.
func Read(data []byte, name string) (*Table, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: the file is %d bytes, over the limit of %d", syncengine.ErrLimit, len(data), MaxFileBytes)
	}
	var rows rowReader
	var sheet string
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		x, err := openXLSX(data)
		if err != nil {
			return nil, err
		}
		defer x.close()
		rows, sheet = x, x.sheet
	} else {
		lower := strings.ToLower(name)
		if bytes.HasPrefix(data, []byte{0xD0, 0xCF, 0x11, 0xE0}) || strings.HasSuffix(lower, ".xls") || strings.HasSuffix(lower, ".xlsx") {
			return nil, fmt.Errorf("%w: %s is not an .xlsx workbook (save an old Excel .xls as .xlsx or .csv first)", syncengine.ErrInvalid, name)
		}
		text, err := csvText(data)
		if err != nil {
			return nil, err
		}
		// The separator is the one under which a header row is found: a
		// comma, else a tab (Excel's "Unicode text"), whatever title rows
		// hold.
		var first error
		for _, sep := range []rune{',', '\t'} {
			t := &Table{}
			err := t.read(newCSVRows(text, sep))
			if err == nil {
				return t, nil
			}
			if first == nil {
				first = err
			}
		}
		return nil, first
	}
	t := &Table{Sheet: sheet}
	if err := t.read(rows); err != nil {
		return nil, err
	}
	return t, nil
}

// rowReader gives a file's rows in order, with their line numbers.
type rowReader interface {
	// next returns the next row and its line; io.EOF after the last.
	next() (cells []string, line int, err error)
}

func (t *Table) read(rows rowReader) error {
	var index []Field // by column; -1 for a column not read
	for {
		cells, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(cells) > maxColumns {
			cells = cells[:maxColumns]
		}
		if len(index) == 0 {
			if line > headerRows && !t.found() {
				break
			}
			index = t.header(cells)
			continue
		}
		var r Row
		empty := true
		for i, c := range cells {
			if i >= len(index) || index[i] < 0 {
				continue
			}
			c = strings.TrimSpace(strings.ReplaceAll(c, "\u3000", " "))
			if c != "" {
				empty = false
			}
			r.Cells[index[i]] = c
		}
		if empty {
			continue
		}
		if len(t.Rows) == MaxRows {
			return fmt.Errorf("%w: the file has more than %d households; import it in parts (a street at a time)", syncengine.ErrLimit, MaxRows)
		}
		r.Line = line
		t.Rows = append(t.Rows, r)
	}
	if !t.found() {
		return fmt.Errorf("%w: no header row in the first %d rows: a ledger has columns such as %s, %s and %s (or %s, %s and %s)", syncengine.ErrInvalid,
			headerRows, FieldHead.Name(true), FieldAddress.Name(true), FieldGrid.Name(true), FieldHead.Name(false), FieldAddress.Name(false), FieldGrid.Name(false))
	}
	return nil
}

func (t *Table) found() bool { return t.Has[FieldHead] || t.Has[FieldID] }

// header reads cells as the header row if at least two of them name
// fields (a title row names none), and returns each column's field; nil
// if cells are not the header.
func (t *Table) header(cells []string) []Field {
	index := make([]Field, len(cells))
	named := 0
	for i, c := range cells {
		f, ok := fieldOf(c)
		if !ok {
			index[i] = -1
			continue
		}
		index[i] = f
		named++
	}
	if named < 2 {
		return nil
	}
	for i, c := range cells {
		f := index[i]
		switch {
		case f < 0 && strings.TrimSpace(c) != "":
			t.Unknown = append(t.Unknown, strings.TrimSpace(c))
		case f >= 0 && t.Has[f]:
			// A second column of one field: the first counts.
			index[i] = -1
			t.Unknown = append(t.Unknown, strings.TrimSpace(c))
		case f >= 0:
			t.Has[f] = true
		}
	}
	return index
}

// xlsxRows reads the ledger's sheet of a workbook.
type xlsxRows struct {
	f     *excelize.File
	rows  *excelize.Rows
	sheet string
	line  int
}

func openXLSX(data []byte) (*xlsxRows, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: maxUnzipped, UnzipXMLSizeLimit: maxXMLInMemory})
	if err != nil {
		return nil, fmt.Errorf("%w: the workbook cannot be read: %v", syncengine.ErrInvalid, err)
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		_ = f.Close()
		return nil, fmt.Errorf("%w: the workbook has no sheet", syncengine.ErrInvalid)
	}
	// The export's sheet, else the first.
	sheet := sheets[0]
	for _, s := range sheets {
		if s == "台账" || strings.EqualFold(s, "ledger") {
			sheet = s
		}
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: sheet %s cannot be read: %v", syncengine.ErrInvalid, sheet, err)
	}
	return &xlsxRows{f: f, rows: rows, sheet: sheet}, nil
}

func (x *xlsxRows) next() ([]string, int, error) {
	// Rows gives empty rows between filled ones too, so the count is the
	// sheet's row number.
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, 0, fmt.Errorf("%w: sheet %s: %v", syncengine.ErrInvalid, x.sheet, err)
		}
		return nil, 0, io.EOF
	}
	x.line++
	cells, err := x.rows.Columns(excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, 0, fmt.Errorf("%w: sheet %s, row %d: %v", syncengine.ErrInvalid, x.sheet, x.line, err)
	}
	return cells, x.line, nil
}

func (x *xlsxRows) close() {
	_ = x.rows.Close()
	_ = x.f.Close()
}

// csvRows reads a CSV file.
type csvRows struct {
	r *csv.Reader
}

// csvText is a CSV file's text in UTF-8.
func csvText(data []byte) ([]byte, error) {
	var text []byte
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		var err error
		text, _, err = transform.Bytes(unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder(), data)
		if err != nil {
			return nil, fmt.Errorf("%w: the file is not UTF-16 text: %v", syncengine.ErrInvalid, err)
		}
	case utf8.Valid(data):
		text = bytes.TrimPrefix(data, []byte("\uFEFF"))
	default:
		var err error
		text, _, err = transform.Bytes(simplifiedchinese.GB18030.NewDecoder(), data)
		if err != nil || !utf8.Valid(text) {
			return nil, fmt.Errorf("%w: the file is neither UTF-8 nor GBK text; save it as .xlsx or as CSV UTF-8", syncengine.ErrInvalid)
		}
	}
	if bytes.IndexByte(text, 0) >= 0 {
		return nil, fmt.Errorf("%w: the file is not a spreadsheet (.xlsx or .csv)", syncengine.ErrInvalid)
	}
	return text, nil
}

func newCSVRows(text []byte, sep rune) *csvRows {
	r := csv.NewReader(bytes.NewReader(text))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.Comma = sep
	return &csvRows{r: r}
}

func (c *csvRows) next() ([]string, int, error) {
	rec, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	if err != nil {
		// A csv.ParseError names its line.
		return nil, 0, fmt.Errorf("%w: %v", syncengine.ErrInvalid, err)
	}
	line, _ := c.r.FieldPos(0)
	return rec, line, nil
}

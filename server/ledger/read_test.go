package ledger_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/syncengine"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
)

// title is the first title row of an office's ledger; the second is empty.
const title = "某街道 · 截至 2026-12-01"

// cells are a row's values by field.
type cells map[ledger.Field]string

// row is a Row as Read gives it.
func row(line int, c cells) ledger.Row {
	r := ledger.Row{Line: line}
	for f, v := range c {
		r.Cells[f] = v
	}
	return r
}

// record lays c out under header, as the export's columns.
func record(header []string, c cells) []string {
	out := make([]string, len(header))
	for f, v := range c {
		out[slices.Index(header, f.Name(true))] = v
	}
	return out
}

// The two households of the office ledger used by the Read tests.
var (
	zhang = cells{
		ledger.FieldCommunity: "东社区", ledger.FieldGrid: "第一网格", ledger.FieldHead: "张三",
		ledger.FieldAddress: "幸福路1号", ledger.FieldMobile: "13800138000", ledger.FieldLandline: "0571-88886666",
		ledger.FieldWorker: "李干部", ledger.FieldLeader: "王领导", ledger.FieldUnit: "街道办",
		ledger.FieldMembers: "3", ledger.FieldPersons: "张三、李四", ledger.FieldCategories: "独居老人",
		ledger.FieldLastVisit: "2026-11-30",
	}
	lei = cells{
		ledger.FieldID: "00000000-0000-7000-8000-0000000000aa", ledger.FieldCommunity: "西社区",
		ledger.FieldGrid: "第二网格", ledger.FieldHead: "李雷", ledger.FieldAddress: "和平路2号, 3单元",
	}
)

// officeLedger is the ledger as an office keeps it: two title rows (the
// second empty), the export's Chinese header, two households.
func officeLedger() [][]string {
	h := ledger.Header(true)
	return [][]string{{title}, {}, h, record(h, zhang), record(h, lei)}
}

// officeTable is what Read makes of officeLedger in any encoding.
func officeTable() wantTable {
	return wantTable{has: allFields(), rows: []ledger.Row{row(4, zhang), row(5, lei)}}
}

func allFields() []ledger.Field {
	var out []ledger.Field
	for f := range len(ledger.Header(true)) {
		out = append(out, ledger.Field(f))
	}
	return out
}

// csvOptions say how a CSV is written.
type csvOptions struct {
	comma rune
	crlf  bool
	// pad widens every row to the widest, as Excel writes its rows.
	pad bool
	bom bool
	enc encoding.Encoding
}

// writeCSV writes rows as a CSV file.
func writeCSV(t testing.TB, rows [][]string, o csvOptions) []byte {
	t.Helper()
	width := 0
	for _, r := range rows {
		width = max(width, len(r))
	}
	var b bytes.Buffer
	if o.bom {
		b.WriteString("\uFEFF")
	}
	w := csv.NewWriter(&b)
	if o.comma != 0 {
		w.Comma = o.comma
	}
	w.UseCRLF = o.crlf
	for _, r := range rows {
		if o.pad {
			r = append(slices.Clone(r), make([]string, width-len(r))...)
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if o.enc == nil {
		return b.Bytes()
	}
	out, err := o.enc.NewEncoder().Bytes(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantTable is what a Table should hold.
type wantTable struct {
	sheet   string
	unknown []string
	has     []ledger.Field
	rows    []ledger.Row
}

func checkTable(t *testing.T, got *ledger.Table, want wantTable) {
	t.Helper()
	if got.Sheet != want.sheet {
		t.Errorf("Sheet = %q, want %q", got.Sheet, want.sheet)
	}
	if !slices.Equal(got.Unknown, want.unknown) {
		t.Errorf("Unknown = %q, want %q", got.Unknown, want.unknown)
	}
	var has []ledger.Field
	for f, ok := range got.Has {
		if ok {
			has = append(has, ledger.Field(f))
		}
	}
	if !slices.Equal(has, want.has) {
		t.Errorf("Has = %v, want %v", names(has), names(want.has))
	}
	if len(got.Rows) != len(want.rows) {
		t.Errorf("%d rows, want %d:\n%s", len(got.Rows), len(want.rows), showRows(got.Rows))
		return
	}
	for i := range want.rows {
		if !reflect.DeepEqual(got.Rows[i], want.rows[i]) {
			t.Errorf("row %d:\n got %s\nwant %s", i, showRows(got.Rows[i:i+1]), showRows(want.rows[i:i+1]))
		}
	}
}

func names(fs []ledger.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name(false)
	}
	return out
}

func showRows(rows []ledger.Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "line %d:", r.Line)
		for f, c := range r.Cells {
			if c != "" {
				fmt.Fprintf(&b, " %s=%q", ledger.Field(f).Name(false), c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestHeader(t *testing.T) {
	t.Parallel()
	zh, en := ledger.Header(true), ledger.Header(false)
	if len(zh) != 14 || len(en) != 14 {
		t.Fatalf("headers of %d and %d columns, want 14", len(zh), len(en))
	}
	for i := range zh {
		f := ledger.Field(i)
		if f.Name(true) != zh[i] || f.Name(false) != en[i] {
			t.Errorf("field %d: Name = %q/%q, header %q/%q", i, f.Name(true), f.Name(false), zh[i], en[i])
		}
	}
	if zh[ledger.FieldHead] != "户主姓名" || en[ledger.FieldHead] != "head of household" {
		t.Errorf("head's column is %q/%q", zh[ledger.FieldHead], en[ledger.FieldHead])
	}
	for _, f := range []ledger.Field{-1, 14, 100} {
		if n := f.Name(true) + f.Name(false); n != "" {
			t.Errorf("Field(%d).Name = %q, want empty", f, n)
		}
	}
}

func TestReadCSV(t *testing.T) {
	t.Parallel()
	zhHeader := strings.Join(ledger.Header(true), ",")
	tests := []struct {
		name string
		data string
		want wantTable
	}{{
		name: "UTF-8, title rows, export's header",
		data: string(writeCSV(t, officeLedger(), csvOptions{})),
		want: officeTable(),
	}, {
		name: "UTF-8 with a byte-order mark",
		data: string(writeCSV(t, officeLedger(), csvOptions{bom: true})),
		want: officeTable(),
	}, {
		name: "CRLF line ends",
		data: string(writeCSV(t, officeLedger(), csvOptions{crlf: true})),
		want: officeTable(),
	}, {
		name: "no title rows",
		data: zhHeader + "\n,,第一网格,张三\n",
		want: wantTable{has: allFields(), rows: []ledger.Row{
			row(2, cells{ledger.FieldGrid: "第一网格", ledger.FieldHead: "张三"}),
		}},
	}, {
		name: "English headers in another order and case",
		data: "Address,HEAD OF HOUSEHOLD,grid,Mobile,Household ID,PERSONS,Categories,members,Community\n" +
			"幸福路1号,张三,第一网格,13800138000,00000000-0000-7000-8000-0000000000aa,张三、李四,elderly living alone,3,东社区\n",
		want: wantTable{
			has: []ledger.Field{ledger.FieldID, ledger.FieldCommunity, ledger.FieldGrid, ledger.FieldHead,
				ledger.FieldAddress, ledger.FieldMobile, ledger.FieldMembers, ledger.FieldPersons, ledger.FieldCategories},
			rows: []ledger.Row{row(2, cells{
				ledger.FieldAddress: "幸福路1号", ledger.FieldHead: "张三", ledger.FieldGrid: "第一网格",
				ledger.FieldMobile: "13800138000", ledger.FieldID: "00000000-0000-7000-8000-0000000000aa",
				ledger.FieldPersons: "张三、李四", ledger.FieldCategories: "elderly living alone",
				ledger.FieldMembers: "3", ledger.FieldCommunity: "东社区",
			})},
		},
	}, {
		name: "headers with spaces",
		data: "Head Of  Household, 户主姓名 ,Last Visit,responsibleworker\n张三,,2026-01-02,李干部\n",
		want: wantTable{
			unknown: []string{"户主姓名"}, // the second head column
			has:     []ledger.Field{ledger.FieldHead, ledger.FieldWorker, ledger.FieldLastVisit},
			rows: []ledger.Row{row(2, cells{
				ledger.FieldHead: "张三", ledger.FieldLastVisit: "2026-01-02", ledger.FieldWorker: "李干部",
			})},
		},
	}, {
		name: "the clerks' own headers",
		data: "序号,户主,住址,联系电话,所属网格,所属社区,座机,家庭人口,成员,重点人群类别,包户干部,联系领导,责任单位,编号\n" +
			"1,张三,幸福路1号,138 0013 8000,第一网格,东社区,88886666,3人,张三,独居老人,李干部,王领导,街道办,\n",
		want: wantTable{
			unknown: []string{"序号"},
			has:     allFields()[:ledger.FieldLastVisit],
			rows: []ledger.Row{row(2, cells{
				ledger.FieldHead: "张三", ledger.FieldAddress: "幸福路1号", ledger.FieldMobile: "138 0013 8000",
				ledger.FieldGrid: "第一网格", ledger.FieldCommunity: "东社区", ledger.FieldLandline: "88886666",
				ledger.FieldMembers: "3人", ledger.FieldPersons: "张三", ledger.FieldCategories: "独居老人",
				ledger.FieldWorker: "李干部", ledger.FieldLeader: "王领导", ledger.FieldUnit: "街道办",
			})},
		},
	}, {
		name: "an unknown column is reported and not read",
		data: "户主姓名,备注,地址,,\n张三,孤寡老人 需关注,幸福路1号,x,y\n",
		want: wantTable{
			unknown: []string{"备注"},
			has:     []ledger.Field{ledger.FieldHead, ledger.FieldAddress},
			rows:    []ledger.Row{row(2, cells{ledger.FieldHead: "张三", ledger.FieldAddress: "幸福路1号"})},
		},
	}, {
		name: "a second column of a field is unknown; the first counts",
		data: "户主姓名,地址,住址\n张三,幸福路1号,和平路2号\n",
		want: wantTable{
			unknown: []string{"住址"},
			has:     []ledger.Field{ledger.FieldHead, ledger.FieldAddress},
			rows:    []ledger.Row{row(2, cells{ledger.FieldHead: "张三", ledger.FieldAddress: "幸福路1号"})},
		},
	}, {
		name: "empty rows skipped, cells trimmed",
		data: title + "\n\n户主姓名,地址,网格\n" +
			",,\n" + // line 4
			"  张三\u3000, \u3000幸福路1号 ,\t第一网格\n" + // line 5
			" , \u3000 ,\n" + // line 6
			"\n" + // line 7
			"\u3000李四,,\n" + // line 8
			",,,extra\n", // line 9: a cell past the header only
		want: wantTable{
			has: []ledger.Field{ledger.FieldGrid, ledger.FieldHead, ledger.FieldAddress},
			rows: []ledger.Row{
				row(5, cells{ledger.FieldHead: "张三", ledger.FieldAddress: "幸福路1号", ledger.FieldGrid: "第一网格"}),
				row(8, cells{ledger.FieldHead: "李四"}),
			},
		},
	}, {
		name: "a cell over two lines: the row is where it starts",
		data: "户主姓名,家庭成员\n张三,\"张三\n李四\"\n李雷,李雷\n",
		want: wantTable{
			has: []ledger.Field{ledger.FieldHead, ledger.FieldPersons},
			rows: []ledger.Row{
				row(2, cells{ledger.FieldHead: "张三", ledger.FieldPersons: "张三\n李四"}),
				row(4, cells{ledger.FieldHead: "李雷", ledger.FieldPersons: "李雷"}),
			},
		},
	}, {
		name: "the header on the tenth line",
		data: strings.Repeat("标题\n", 9) + "户编号,户主姓名\n,张三\n",
		want: wantTable{
			has:  []ledger.Field{ledger.FieldID, ledger.FieldHead},
			rows: []ledger.Row{row(11, cells{ledger.FieldHead: "张三"})},
		},
	}, {
		name: "an id column is enough",
		data: "户编号,地址\n00000000-0000-7000-8000-0000000000aa,幸福路1号\n",
		want: wantTable{
			has:  []ledger.Field{ledger.FieldID, ledger.FieldAddress},
			rows: []ledger.Row{row(2, cells{ledger.FieldID: "00000000-0000-7000-8000-0000000000aa", ledger.FieldAddress: "幸福路1号"})},
		},
	}, {
		name: "a header and no rows",
		data: zhHeader + "\n",
		want: wantTable{has: allFields()},
	}, {
		name: "tab-separated UTF-8",
		data: "户主姓名\t地址\n张三\t幸福路1号, 3单元\n",
		want: wantTable{
			has:  []ledger.Field{ledger.FieldHead, ledger.FieldAddress},
			rows: []ledger.Row{row(2, cells{ledger.FieldHead: "张三", ledger.FieldAddress: "幸福路1号, 3单元"})},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ledger.Read([]byte(tt.data), "台账.csv")
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			checkTable(t, got, tt.want)
		})
	}
}

// TestReadEncodings reads the office's ledger in each form an office's
// spreadsheet saves it: each must read to the same rows.
func TestReadEncodings(t *testing.T) {
	t.Parallel()
	utf16LE := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	utf16BE := unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
	tests := []struct {
		name string
		rows [][]string
		o    csvOptions
	}{
		{"UTF-8", officeLedger(), csvOptions{}},
		{"UTF-8 with a byte-order mark, CRLF", officeLedger(), csvOptions{bom: true, crlf: true}},
		{"GB18030", officeLedger(), csvOptions{enc: simplifiedchinese.GB18030}},
		{"GBK, CRLF, rows padded (Excel on a Chinese system)", officeLedger(), csvOptions{enc: simplifiedchinese.GBK, crlf: true, pad: true}},
		{"UTF-16LE with a mark, tab-separated (Excel's Unicode text)", officeLedger(), csvOptions{enc: utf16LE, comma: '\t', crlf: true, pad: true}},
		{"UTF-16BE with a mark, tab-separated", officeLedger(), csvOptions{enc: utf16BE, comma: '\t', crlf: true, pad: true}},
		{"UTF-8, tab-separated, rows padded", officeLedger(), csvOptions{comma: '\t', pad: true}},
		// The separator is taken from the first line, which is a title row.
		{"UTF-16LE, tab-separated, title rows not padded", officeLedger(), csvOptions{enc: utf16LE, comma: '\t', crlf: true}},
		{"UTF-16LE, tab-separated, a title with a comma", withTitle(officeLedger(), "Street A, as of 2026-12-01"), csvOptions{enc: utf16LE, comma: '\t', crlf: true, pad: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := writeCSV(t, tt.rows, tt.o)
			if tt.o.enc != nil && bytes.Equal(data, writeCSV(t, tt.rows, csvOptions{comma: tt.o.comma, crlf: tt.o.crlf, pad: tt.o.pad})) {
				t.Fatal("the encoding left the file as it was")
			}
			got, err := ledger.Read(data, "台账.csv")
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			checkTable(t, got, officeTable())
		})
	}
}

func withTitle(rows [][]string, title string) [][]string {
	rows[0] = []string{title}
	return rows
}

// sheet is a worksheet of a test workbook: its rows by row number.
type sheet struct {
	name string
	rows map[int][]any
}

// workbook writes an .xlsx of sheets, in order.
func workbook(t testing.TB, sheets ...sheet) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer func() { _ = f.Close() }()
	for i, s := range sheets {
		var err error
		if i == 0 {
			err = f.SetSheetName("Sheet1", s.name)
		} else {
			_, err = f.NewSheet(s.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		for n, cells := range s.rows {
			at, err := excelize.CoordinatesToCellName(1, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.SetSheetRow(s.name, at, &cells); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := f.WriteToBuffer()
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// anyRow is header's cells as a sheet row.
func anyRow(s []string) []any {
	out := make([]any, len(s))
	for i, c := range s {
		out[i] = c
	}
	return out
}

// officeSheet is the office's ledger as a worksheet: a title, an empty
// row, the header, a household whose phone and member count are numbers,
// a gap of empty rows (one with empty cells), another household.
func officeSheet(name string) sheet {
	h := ledger.Header(true)
	first := anyRow(record(h, zhang))
	first[ledger.FieldMobile] = int64(13800138000)
	first[ledger.FieldMembers] = 3
	return sheet{name: name, rows: map[int][]any{
		1: {title},
		3: anyRow(h),
		4: first,
		6: {"", "  ", ""},
		8: anyRow(record(h, lei)),
	}}
}

func TestReadXLSX(t *testing.T) {
	t.Parallel()
	office := wantTable{sheet: "台账", has: allFields(), rows: []ledger.Row{row(4, zhang), row(8, lei)}}
	notes := sheet{name: "说明", rows: map[int][]any{1: {"填表说明"}, 2: {"户主姓名必填", "地址"}}}
	en := sheet{name: "ledger", rows: map[int][]any{
		1: {"Head of household", "Address", "Grid", "Mobile"},
		2: {"Li Lei", "Room 201", "第一网格", 13900139000},
	}}
	enRows := []ledger.Row{row(2, cells{ledger.FieldHead: "Li Lei", ledger.FieldAddress: "Room 201",
		ledger.FieldGrid: "第一网格", ledger.FieldMobile: "13900139000"})}
	enHas := []ledger.Field{ledger.FieldGrid, ledger.FieldHead, ledger.FieldAddress, ledger.FieldMobile}
	tests := []struct {
		name     string
		data     []byte
		fileName string
		want     wantTable
	}{{
		name:     "the office's sheet",
		data:     workbook(t, officeSheet("台账")),
		fileName: "台账.xlsx",
		want:     office,
	}, {
		name:     "the name does not matter: a zip is a workbook",
		data:     workbook(t, officeSheet("台账")),
		fileName: "ledger.csv",
		want:     office,
	}, {
		name:     "台账 after another sheet",
		data:     workbook(t, notes, officeSheet("台账")),
		fileName: "x.xlsx",
		want:     office,
	}, {
		name:     "the ledger on a second sheet named ledger",
		data:     workbook(t, notes, en),
		fileName: "ledger.xlsx",
		want:     wantTable{sheet: "ledger", has: enHas, rows: enRows},
	}, {
		name:     "a sheet named LEDGER",
		data:     workbook(t, notes, sheet{name: "LEDGER", rows: en.rows}),
		fileName: "ledger.xlsx",
		want:     wantTable{sheet: "LEDGER", has: enHas, rows: enRows},
	}, {
		name:     "no sheet named for the ledger: the first",
		data:     workbook(t, sheet{name: "Sheet1", rows: en.rows}, notes),
		fileName: "ledger.xlsx",
		want:     wantTable{sheet: "Sheet1", has: enHas, rows: enRows},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ledger.Read(tt.data, tt.fileName)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			checkTable(t, got, tt.want)
		})
	}
}

// rowsCSV is a ledger of n households.
func rowsCSV(n int) []byte {
	var b bytes.Buffer
	b.Grow(32 + n*16)
	b.WriteString("户主姓名,地址\n")
	for i := range n {
		b.WriteString("户")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(",1号\n")
	}
	return b.Bytes()
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	good := workbook(t, officeSheet("台账"))
	tests := []struct {
		name     string
		data     func() []byte
		fileName string
		want     error
	}{{
		name:     "no header in the first 10 rows",
		data:     func() []byte { return []byte(strings.Repeat("标题\n", 10) + "户编号,户主姓名\n,张三\n") },
		fileName: "台账.csv",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "no header at all",
		data:     func() []byte { return []byte("hello,world\n1,2\n") },
		fileName: "台账.csv",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "a header without the head or an id",
		data:     func() []byte { return []byte("网格,地址\n第一网格,幸福路1号\n") },
		fileName: "台账.csv",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "an empty file",
		data:     func() []byte { return nil },
		fileName: "台账.csv",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "over MaxFileBytes",
		data:     func() []byte { return make([]byte, ledger.MaxFileBytes+1) },
		fileName: "台账.csv",
		want:     syncengine.ErrLimit,
	}, {
		name:     "more than MaxRows households",
		data:     func() []byte { return rowsCSV(ledger.MaxRows + 1) },
		fileName: "台账.csv",
		want:     syncengine.ErrLimit,
	}, {
		name:     "an .xls name, text inside",
		data:     func() []byte { return []byte("户主姓名,地址\n张三,幸福路1号\n") },
		fileName: "台账.xls",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "an .XLSX name, text inside",
		data:     func() []byte { return []byte("户主姓名,地址\n张三,幸福路1号\n") },
		fileName: "台账.XLSX",
		want:     syncengine.ErrInvalid,
	}, {
		name: "an old Excel workbook (OLE2) named .csv",
		data: func() []byte {
			return append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 504)...)
		},
		fileName: "台账.csv",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "a NUL byte",
		data:     func() []byte { return []byte("户主姓名,地址\n张\x00三,幸福路1号\n") },
		fileName: "台账.csv",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "a zip's magic, then junk",
		data:     func() []byte { return []byte("PK\x03\x04 this is not a workbook at all") },
		fileName: "台账.xlsx",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "a truncated workbook",
		data:     func() []byte { return good[:len(good)/2] },
		fileName: "台账.xlsx",
		want:     syncengine.ErrInvalid,
	}, {
		name:     "a workbook with its end cut off",
		data:     func() []byte { return good[:len(good)-30] },
		fileName: "台账.xlsx",
		want:     syncengine.ErrInvalid,
	}, {
		name: "a zip that is not a workbook",
		data: func() []byte {
			b := good[:len(good):len(good)]
			return bytes.ReplaceAll(b, []byte("xl/workbook.xml"), []byte("xl/workbook.xmX"))
		},
		fileName: "台账.xlsx",
		want:     syncengine.ErrInvalid,
	}, {
		name: "a workbook without a header",
		data: func() []byte {
			return workbook(t, sheet{name: "台账", rows: map[int][]any{1: {"某街道台账"}, 2: {"张三", "幸福路1号"}}})
		},
		fileName: "台账.xlsx",
		want:     syncengine.ErrInvalid,
	}, {
		name: "a workbook with its header on row 11",
		data: func() []byte {
			return workbook(t, sheet{name: "台账", rows: map[int][]any{1: {"某街道台账"}, 11: {"户主姓名", "地址"}, 12: {"张三", "幸福路1号"}}})
		},
		fileName: "台账.xlsx",
		want:     syncengine.ErrInvalid,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ledger.Read(tt.data(), tt.fileName)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Read = %v, %v; want an error wrapping %v", got, err, tt.want)
			}
			other := syncengine.ErrLimit
			if tt.want == syncengine.ErrLimit {
				other = syncengine.ErrInvalid
			}
			if errors.Is(err, other) {
				t.Errorf("Read's error %v wraps %v too", err, other)
			}
			if got != nil {
				t.Errorf("Read gave a table with its error")
			}
		})
	}
}

func TestReadMaxRows(t *testing.T) {
	t.Parallel()
	got, err := ledger.Read(rowsCSV(ledger.MaxRows), "台账.csv")
	if err != nil {
		t.Fatalf("Read of MaxRows households: %v", err)
	}
	if len(got.Rows) != ledger.MaxRows {
		t.Fatalf("%d rows, want %d", len(got.Rows), ledger.MaxRows)
	}
	last := got.Rows[len(got.Rows)-1]
	if last.Line != ledger.MaxRows+1 || last.Cells[ledger.FieldHead] != "户"+strconv.Itoa(ledger.MaxRows-1) {
		t.Errorf("last row: %s", showRows([]ledger.Row{last}))
	}
}

func TestMobile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"13800138000", "13800138000", true},
		{"138 0013 8000", "13800138000", true},
		{"138-0013-8000", "13800138000", true},
		{"+86 138-0013-8000", "13800138000", true},
		{"+8613800138000", "13800138000", true},
		{"8613800138000", "13800138000", true},
		{"0086 13800138000", "13800138000", true},
		{"19912345678", "19912345678", true},
		{"", "", true},
		{"12345", "", false},
		{"2380013800a", "", false},
		{"23800138000", "", false},
		{"1380013800a", "", false},
		{"0138001380000", "", false},
		{"138001380001", "", false},
		{"1380013800", "", false},
		{"１３８００１３８０００", "", false},
		{"+1 13800138000", "", false},
		{"无", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := ledger.Mobile(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Mobile(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestLandline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"0571-88886666", "0571-88886666", true},
		{"(0571)88886666", "0571-88886666", true},
		{"（0571）88886666", "0571-88886666", true},
		{"0571 88886666", "0571-88886666", true},
		{"057188886666", "0571-88886666", true},
		{"05718888666", "0571-8888666", true},
		{"01088886666", "010-88886666", true},
		{"02188886666", "021-88886666", true},
		{"010-88886666", "010-88886666", true},
		{"88886666", "88886666", true},
		{"8888666", "8888666", true},
		{"0571-88886666-123", "0571-88886666-123", true},
		{"88886666-123456", "88886666-123456", true},
		{"", "", true},
		{"   ", "", true},
		{"123", "", false},
		{"0571-0888666", "", false},
		{"abc", "", false},
		{"0571", "", false},
		{"05-88886666", "", false},
		{"05711-88886666", "", false},
		{"0571-888866661", "", false},
		{"0571-88886666-1234567", "", false},
		{"0571-88886666-1-2", "", false},
		{"0571-8888a666", "", false},
		{"0571888866661234", "", false},
		{"13800138000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := ledger.Landline(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Landline(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// Package ledger owns the household ledger (台账) as offices keep it in a
// spreadsheet: its columns, in Chinese and in English, which the export
// writes and the import reads; reading an .xlsx or .csv ledger whatever
// its column order, encoding or title rows; and the rules of an import:
// how a row is checked, which household it is (its id, or its grid,
// address and head's name), and what it would create, update or leave.
//
// It reads no storage: the service gives it the node's grids, categories
// and households, and writes what the plan says in one transaction.
package ledger

import "strings"

// Field is a column of the ledger.
type Field int

// The ledger's columns, in the export's order.
const (
	FieldID Field = iota
	FieldCommunity
	FieldGrid
	FieldHead
	FieldAddress
	FieldMobile
	FieldLandline
	FieldWorker
	FieldLeader
	FieldUnit
	FieldMembers
	FieldPersons
	FieldCategories
	FieldLastVisit
	numFields
)

// column names a field: its Chinese and English headers, then the other
// headers clerks give it in the ledgers they already keep.
type column struct {
	zh, en  string
	aliases []string
}

var columns = [numFields]column{
	FieldID:         {"户编号", "household id", []string{"id", "编号"}},
	FieldCommunity:  {"社区", "community", []string{"所属社区", "社区名称"}},
	FieldGrid:       {"网格", "grid", []string{"所属网格", "网格名称"}},
	FieldHead:       {"户主姓名", "head of household", []string{"户主", "head"}},
	FieldAddress:    {"地址", "address", []string{"住址", "家庭住址", "门牌地址"}},
	FieldMobile:     {"手机", "mobile", []string{"手机号", "手机号码", "联系电话", "联系方式"}},
	FieldLandline:   {"固定电话", "landline", []string{"座机", "固话"}},
	FieldWorker:     {"包户责任人", "responsible worker", []string{"包户干部", "责任人"}},
	FieldLeader:     {"包户领导", "responsible leader", []string{"联系领导"}},
	FieldUnit:       {"包户单位", "responsible unit", []string{"责任单位"}},
	FieldMembers:    {"人口数", "members", []string{"家庭人口", "人口", "家庭人口数"}},
	FieldPersons:    {"家庭成员", "persons", []string{"成员", "家庭成员姓名"}},
	FieldCategories: {"五必访类别", "categories", []string{"必访类别", "类别", "重点人群类别"}},
	FieldLastVisit:  {"最近走访", "last visit", nil},
}

// Header is the ledger's header row, in Chinese if zh.
func Header(zh bool) []string {
	out := make([]string, numFields)
	for f, c := range columns {
		if zh {
			out[f] = c.zh
		} else {
			out[f] = c.en
		}
	}
	return out
}

// Name is f's header, in Chinese if zh.
func (f Field) Name(zh bool) string {
	if f < 0 || f >= numFields {
		return ""
	}
	if zh {
		return columns[f].zh
	}
	return columns[f].en
}

// fieldOf names the field a header cell is, if any: the headers compare
// without spaces and English ones in any case.
func fieldOf(header string) (Field, bool) {
	h := squash(header)
	for f, c := range columns {
		if h == squash(c.zh) || h == squash(c.en) {
			return Field(f), true
		}
		for _, a := range c.aliases {
			if h == squash(a) {
				return Field(f), true
			}
		}
	}
	return 0, false
}

// squash is s without white space (full-width spaces included) and in
// lower case: how two spellings of one header, address or name compare.
func squash(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(strings.ReplaceAll(s, "\u3000", " ")), ""))
}

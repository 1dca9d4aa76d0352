package ledger_test

import (
	"testing"

	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/syncengine"
)

// TestPersonCell: a persons cell says a person's residence status in
// brackets after the name, as the export writes it; other words in
// brackets are part of the name.
func TestPersonCell(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ cell, name, residence string }{
		{"张三", "张三", ""},
		{"张三（流动人口）", "张三", syncengine.ResidenceMigrant},
		{"张三(流动)", "张三", syncengine.ResidenceMigrant},
		{"张三（已迁出）", "张三", syncengine.ResidenceMovedAway},
		{"张三 (moved away)", "张三", syncengine.ResidenceMovedAway},
		{"张三（户籍人口）", "张三", syncengine.ResidenceResident},
		{"张三（大）", "张三（大）", ""},
		{"（流动人口）", "（流动人口）", ""},
	} {
		name, residence := ledger.PersonCell(tc.cell)
		if name != tc.name || residence != tc.residence {
			t.Errorf("PersonCell(%q) = %q, %q; want %q, %q", tc.cell, name, residence, tc.name, tc.residence)
		}
	}
	// The export marks migrants and those moved away, and reads them back.
	for _, zh := range []bool{true, false} {
		for _, r := range []string{syncengine.ResidenceMigrant, syncengine.ResidenceMovedAway} {
			if name, back := ledger.PersonCell(ledger.PersonText("李四", r, zh)); name != "李四" || back != r {
				t.Errorf("PersonText(李四, %q, %v) reads back as %q, %q", r, zh, name, back)
			}
		}
		for _, r := range []string{"", syncengine.ResidenceResident} {
			if got := ledger.PersonText("李四", r, zh); got != "李四" {
				t.Errorf("PersonText(李四, %q, %v) = %q, want the name alone", r, zh, got)
			}
		}
	}
}

// TestPlanResidence: a row's persons cell adds persons with their status
// and changes the status of persons listed; saying what is there changes
// nothing.
func TestPlanResidence(t *testing.T) {
	t.Parallel()
	const hh, grid = "00000000-0000-7000-8000-000000000101", "00000000-0000-7000-8000-000000000201"
	clk := syncengine.Clock{HLC: 1, Node: 1}
	cur := ledger.Current{
		Household: syncengine.Household{ID: hh, GridID: syncengine.NewRegister(grid, clk), HeadName: syncengine.NewRegister("张伟", clk)},
		Persons:   []string{"张伟", "李娜"},
		People:    []ledger.Person{{ID: "00000000-0000-7000-8000-000000000301", Name: "张伟"}, {ID: "00000000-0000-7000-8000-000000000302", Name: "李娜", Residence: syncengine.ResidenceMigrant}},
	}
	set := ledger.Setting{Grids: []ledger.Grid{{ID: grid, Name: "第一网格"}}, Households: []ledger.Current{cur}}
	tb, err := ledger.Read([]byte("户编号,家庭成员\n"+hh+",张伟（已迁出）、李娜（流动人口）、王五（流动人口）\n"+hh+",张伟、李娜\n"), "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	out := ledger.Plan(tb, set)
	o := out[0]
	if o.Action != ledger.Update || len(o.Moves) != 1 || o.Moves[0].PersonID != cur.People[0].ID || o.Moves[0].Residence != syncengine.ResidenceMovedAway ||
		len(o.Persons) != 1 || o.Residences["王五"] != syncengine.ResidenceMigrant {
		t.Fatalf("row 2: %+v; want 张伟 moved away and 王五 added as a migrant", o)
	}
	b := o.Rows("00000000-0000-7000-8000-000000000999", func() string { return "00000000-0000-7000-8000-000000000998" }, func() syncengine.Clock { return syncengine.Clock{HLC: 9, Node: 1} })
	if err := b.Validate(); err != nil || len(b.Persons) != 2 || b.Persons[1].ID != cur.People[0].ID || b.Persons[1].Residence.Value != syncengine.ResidenceMovedAway || b.Persons[0].Residence.Value != syncengine.ResidenceMigrant {
		t.Errorf("rows: %+v (%v)", b.Persons, err)
	}
	if out[1].Action != ledger.Refuse || out[1].Refusal != ledger.RefusalDuplicate {
		t.Errorf("the same household again: %+v", out[1])
	}
	// Saying what is there: unchanged.
	tb2, _ := ledger.Read([]byte("户编号,家庭成员\n"+hh+",张伟、李娜（流动人口）\n"), "x.csv")
	if o := ledger.Plan(tb2, set)[0]; o.Action != ledger.Unchanged {
		t.Errorf("persons as they are: %+v, want unchanged", o)
	}
}

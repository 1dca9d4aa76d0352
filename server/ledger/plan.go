package ledger

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/doorbook/doorbook/syncengine"
)

// Action is what an import does with a row (the API's ImportAction).
type Action int

// Actions.
const (
	Create Action = iota + 1
	Update
	Unchanged
	Refuse
)

// Refusal is why a row is refused (the API's ImportRefusal).
type Refusal int

// Refusals. A row is refused for the first that applies.
const (
	RefusalBadID Refusal = iota + 1
	RefusalMissingGrid
	RefusalUnknownGrid
	RefusalAmbiguousGrid
	RefusalMissingHead
	RefusalBadMobile
	RefusalBadLandline
	RefusalBadMembers
	RefusalUnknownCategory
	// RefusalNotHere: the id is a household outside the node (or one
	// deleted).
	RefusalNotHere
	// RefusalMoved: the household lives in another grid than the row
	// says; a move is MoveHousehold's, which the phones learn of.
	RefusalMoved
	// RefusalAmbiguousMatch: several households have the row's grid,
	// address and head's name; the row must give the id.
	RefusalAmbiguousMatch
	// RefusalDuplicate: another row is the same household (one that
	// gives its id, else an earlier one).
	RefusalDuplicate
	// RefusalTooMany: persons or categories over a household's caps.
	RefusalTooMany
	// RefusalInvalid: a value the ledger cannot hold (too long, not
	// text).
	RefusalInvalid
)

// Grid is a grid of the node imported into.
type Grid struct {
	ID, Name string
	// Community is the name of its community.
	Community string
}

// Current is a household of the node as it stands.
type Current struct {
	Household syncengine.Household
	// Persons are the names of its persons (not deleted).
	Persons []string
	// People are the same persons with their ids and residence status,
	// when the caller has them: a row may change a person's status.
	People []Person
	// Categories are the codes of its categories.
	Categories []string
}

// Person is a person of a household as a plan needs it.
type Person struct {
	ID, Name, Residence string
}

// Move is a change of a listed person's residence status.
type Move struct {
	PersonID, Residence string
}

// Setting is what a plan is made against.
type Setting struct {
	Grids      []Grid
	Categories []syncengine.Category
	// Households are the node's households (not deleted).
	Households []Current
	// Taken are ids of the file that are households, but not of
	// Households: outside the node, or deleted.
	Taken map[string]bool
}

// Outcome is what an import does with one row.
type Outcome struct {
	Line    int
	Action  Action
	Refusal Refusal
	// Detail is the value refused, or what else the clerk must know (the
	// earlier line of a duplicate, the grid a household is in).
	Detail string
	// HouseholdID is the household the row is: the one matched, the id
	// the row gives a new one, or (once applied) the new one's.
	HouseholdID string
	// Changed are the fields an update or a creation writes.
	Changed []Field
	// Persons are the names of the persons it adds, and Residences the
	// status the row gives some of them, by name.
	Persons    []string
	Residences map[string]string
	// Moves change the residence status of persons already listed.
	Moves []Move
	// Categories are the codes of the categories it adds.
	Categories []string

	row Values
}

// Values are a row's values, checked and in the ledger's form.
type Values struct {
	ID, GridID                      string
	Head, Address, Mobile, Landline string
	Worker, Leader, Unit            string
	Members                         int64
	HasMembers                      bool
	Persons                         []string
	// Residence is the status the persons cell gives a person (by the
	// name's squashed form), as "张三（流动人口）" says.
	Residence  map[string]string
	Categories []string
}

// Plan decides what importing t into the node of s does with each row.
// It is the same for a dry run and the real one, and a file imported
// twice plans nothing the second time: a row's empty cell leaves the
// field as it is, and persons and categories are only added.
func Plan(t *Table, s Setting) []Outcome {
	p := newPlanner(s)
	out := make([]Outcome, len(t.Rows))
	// Rows that give the id of a household first, then those that give a
	// new one, then those found by grid, address and head: a row with an
	// id may give its household another address or head, and the others
	// must find the households where the file leaves them, whatever the
	// rows' order, as a second import of the file will.
	pass := func(r *Row) int {
		switch id := strings.ToLower(r.Cells[FieldID]); {
		case p.homes[id] != nil:
			return 0
		case syncengine.IsID(id):
			return 1
		}
		return 2
	}
	for n := range 3 {
		for i := range t.Rows {
			if pass(&t.Rows[i]) == n {
				out[i] = p.row(&t.Rows[i])
			}
		}
	}
	return out
}

type planner struct {
	s      Setting
	byName map[string][]Grid // by the grid's name, and by community/grid
	byID   map[string]Grid
	cats   map[string]string // by code and names, squashed
	homes  map[string]*Current
	byKey  map[string][]*Current
	seen   map[string]int // a row's household (or new household's key): its line
	// claimed are the grid, address and head (a key) of each household an
	// accepted row writes, as they will be: the row's household (seen).
	claimed map[string]string
}

func newPlanner(s Setting) *planner {
	p := &planner{s: s, byName: map[string][]Grid{}, byID: map[string]Grid{}, cats: map[string]string{},
		homes: map[string]*Current{}, byKey: map[string][]*Current{}, seen: map[string]int{}, claimed: map[string]string{}}
	for _, g := range s.Grids {
		p.byID[g.ID] = g
		p.byName[squash(g.Name)] = append(p.byName[squash(g.Name)], g)
		path := squash(g.Community) + "/" + squash(g.Name)
		p.byName[path] = append(p.byName[path], g)
	}
	for _, c := range s.Categories {
		if c.Deleted.Value {
			continue
		}
		for _, n := range []string{c.Code, c.NameZH.Value, c.NameEN.Value} {
			if n != "" {
				p.cats[squash(n)] = c.Code
			}
		}
	}
	for i := range s.Households {
		c := &s.Households[i]
		p.homes[c.Household.ID] = c
		k := key(c.Household.GridID.Value, c.Household.Address.Value, c.Household.HeadName.Value)
		p.byKey[k] = append(p.byKey[k], c)
	}
	return p
}

// key is how a row without an id finds its household.
func key(grid, address, head string) string {
	return grid + "\x00" + squash(address) + "\x00" + squash(head)
}

func (p *planner) row(r *Row) Outcome {
	o := Outcome{Line: r.Line}
	refuse := func(why Refusal, detail string) Outcome {
		o.Action, o.Refusal, o.Detail, o.Changed, o.Persons, o.Categories, o.Residences, o.Moves = Refuse, why, detail, nil, nil, nil, nil, nil
		return o
	}
	v, why, detail := p.values(r)
	if why != 0 {
		return refuse(why, detail)
	}
	o.row = v
	var cur *Current
	target := ""
	switch {
	case v.ID != "" && p.homes[v.ID] != nil:
		cur, target = p.homes[v.ID], v.ID
	case v.ID != "" && p.s.Taken[v.ID]:
		return refuse(RefusalNotHere, v.ID)
	case v.GridID == "":
		return refuse(RefusalMissingGrid, "")
	case v.Head == "":
		return refuse(RefusalMissingHead, "")
	default:
		k := key(v.GridID, v.Address, v.Head)
		switch found := p.byKey[k]; {
		case p.claimed[k] != "":
			// An earlier row gave its household this grid, address and
			// head.
			return refuse(RefusalDuplicate, strconv.Itoa(p.seen[p.claimed[k]]))
		case v.ID != "":
			target = v.ID // a new household with the id the row gives
		case len(found) == 1:
			cur, target = found[0], found[0].Household.ID
		case len(found) > 1:
			return refuse(RefusalAmbiguousMatch, found[0].Household.ID+", "+found[1].Household.ID)
		default:
			target = "new\x00" + k
		}
	}
	if cur != nil && v.GridID != "" && v.GridID != cur.Household.GridID.Value {
		return refuse(RefusalMoved, p.byID[cur.Household.GridID.Value].Name)
	}
	if line, ok := p.seen[target]; ok {
		return refuse(RefusalDuplicate, strconv.Itoa(line))
	}
	if cur == nil {
		o.Action = Create
		o.HouseholdID = v.ID
		o.changes(v, &Current{})
	} else {
		o.HouseholdID = cur.Household.ID
		o.changes(v, cur)
		o.Action = Update
		if len(o.Changed) == 0 && len(o.Persons) == 0 && len(o.Categories) == 0 && len(o.Moves) == 0 {
			o.Action = Unchanged
		}
	}
	have := Current{}
	if cur != nil {
		have = *cur
	}
	if len(have.Persons)+len(o.Persons) > syncengine.MaxPersonsPerHousehold || len(have.Categories)+len(o.Categories) > syncengine.MaxLiveTagsPerHousehold {
		return refuse(RefusalTooMany, fmt.Sprintf("%d+%d, %d+%d", len(have.Persons), len(o.Persons), len(have.Categories), len(o.Categories)))
	}
	// What the row writes must be what a phone accepts (syncengine's
	// limits), or its grid's pulls would stop at it.
	b := o.Rows("00000000-0000-7000-8000-000000000000", func() string { return "00000000-0000-7000-8000-000000000001" },
		func() syncengine.Clock { return syncengine.Clock{HLC: 1, Node: 1} })
	if err := b.Validate(); err != nil {
		return refuse(RefusalInvalid, err.Error())
	}
	// The household's grid, address and head once the row is written: no
	// other household may have them, or a second import of the file would
	// find two where the first found one.
	final := key(cmp.Or(v.GridID, have.Household.GridID.Value), cmp.Or(v.Address, have.Household.Address.Value), cmp.Or(v.Head, have.Household.HeadName.Value))
	moved := cur == nil || final != key(cur.Household.GridID.Value, cur.Household.Address.Value, cur.Household.HeadName.Value)
	if t := p.claimed[final]; t != "" && t != target {
		return refuse(RefusalAmbiguousMatch, strconv.Itoa(p.seen[t]))
	}
	if moved {
		for _, other := range p.byKey[final] {
			if other.Household.ID != target {
				return refuse(RefusalAmbiguousMatch, other.Household.ID)
			}
		}
	}
	if moved && cur != nil {
		// The file says where the household is now: a later row naming
		// the old grid, address and head is another household, as a
		// second import would find.
		old := key(cur.Household.GridID.Value, cur.Household.Address.Value, cur.Household.HeadName.Value)
		p.byKey[old] = slices.DeleteFunc(slices.Clone(p.byKey[old]), func(c *Current) bool { return c == cur })
	}
	p.claimed[final] = target
	p.seen[target] = r.Line
	return o
}

// values reads a row's cells; a refusal names the first bad one.
func (p *planner) values(r *Row) (Values, Refusal, string) {
	c := &r.Cells
	v := Values{Head: c[FieldHead], Address: c[FieldAddress], Worker: c[FieldWorker], Leader: c[FieldLeader], Unit: c[FieldUnit]}
	if id := c[FieldID]; id != "" {
		if !syncengine.IsID(id) {
			return v, RefusalBadID, id
		}
		v.ID = strings.ToLower(id)
	}
	if g := c[FieldGrid]; g != "" {
		grids := p.byName[squash(g)]
		if c[FieldCommunity] != "" {
			grids = p.byName[squash(c[FieldCommunity])+"/"+squash(g)]
		}
		if x, ok := p.byID[strings.ToLower(g)]; ok {
			grids = []Grid{x}
		}
		switch len(grids) {
		case 0:
			return v, RefusalUnknownGrid, strings.Trim(c[FieldCommunity]+"/"+g, "/")
		case 1:
			v.GridID = grids[0].ID
		default:
			return v, RefusalAmbiguousGrid, g
		}
	}
	var ok bool
	if v.Landline, ok = Landline(c[FieldLandline]); !ok {
		return v, RefusalBadLandline, c[FieldLandline]
	}
	if v.Mobile, ok = Mobile(c[FieldMobile]); !ok {
		// Ledgers keep one contact number (联系电话), which may be a fixed
		// line: it goes where it belongs if that column is empty.
		fixed, isFixed := Landline(c[FieldMobile])
		if !isFixed || v.Landline != "" {
			return v, RefusalBadMobile, c[FieldMobile]
		}
		v.Landline = fixed
	}
	if m := c[FieldMembers]; m != "" {
		n, err := strconv.ParseInt(strings.TrimSuffix(m, "人"), 10, 64)
		if err != nil || n < 0 || n > 1000 {
			return v, RefusalBadMembers, m
		}
		v.Members, v.HasMembers = n, true
	}
	for _, cell := range split(c[FieldPersons]) {
		name, residence := PersonCell(cell)
		if !slices.ContainsFunc(v.Persons, func(n string) bool { return squash(n) == squash(name) }) {
			v.Persons = append(v.Persons, name)
		}
		if residence != "" {
			if v.Residence == nil {
				v.Residence = map[string]string{}
			}
			v.Residence[squash(name)] = residence
		}
	}
	for _, name := range split(c[FieldCategories]) {
		code, ok := p.cats[squash(name)]
		if !ok {
			return v, RefusalUnknownCategory, name
		}
		if !slices.Contains(v.Categories, code) {
			v.Categories = append(v.Categories, code)
		}
	}
	return v, 0, ""
}

// split splits a cell of names as clerks write them: 、 (as the export
// does), commas or semicolons of either width.
func split(cell string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(cell, func(r rune) bool {
		return strings.ContainsRune("、,，;；\n", r)
	}) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// changes sets what the row writes over cur: each field whose cell is
// not empty and says something else, and the persons and categories cur
// lacks.
func (o *Outcome) changes(v Values, cur *Current) {
	h := &cur.Household
	str := []struct {
		f        Field
		new, old string
	}{
		{FieldHead, v.Head, h.HeadName.Value}, {FieldAddress, v.Address, h.Address.Value},
		{FieldMobile, v.Mobile, h.PhoneMobile.Value}, {FieldLandline, v.Landline, h.PhoneLandline.Value},
		{FieldWorker, v.Worker, h.ResponsibleWorker.Value}, {FieldLeader, v.Leader, h.ResponsibleLeader.Value},
		{FieldUnit, v.Unit, h.ResponsibleUnit.Value},
	}
	if v.GridID != "" && v.GridID != h.GridID.Value {
		o.Changed = append(o.Changed, FieldGrid)
	}
	for _, s := range str {
		if s.new != "" && s.new != s.old {
			o.Changed = append(o.Changed, s.f)
		}
	}
	if v.HasMembers && (v.Members != h.MemberCount.Value || !h.MemberCount.Set()) {
		o.Changed = append(o.Changed, FieldMembers)
	}
	slices.Sort(o.Changed)
	for _, name := range v.Persons {
		residence := v.Residence[squash(name)]
		if !slices.ContainsFunc(cur.Persons, func(n string) bool { return squash(n) == squash(name) }) {
			o.Persons = append(o.Persons, name)
			if residence != "" {
				if o.Residences == nil {
					o.Residences = map[string]string{}
				}
				o.Residences[name] = residence
			}
			continue
		}
		// A person listed: the row may say they moved away, or came.
		for _, p := range cur.People {
			if squash(p.Name) == squash(name) && residence != "" && p.Residence != residence {
				o.Moves = append(o.Moves, Move{PersonID: p.ID, Residence: residence})
			}
		}
	}
	for _, code := range v.Categories {
		if !slices.Contains(cur.Categories, code) {
			o.Categories = append(o.Categories, code)
		}
	}
}

// Rows are the ledger rows an outcome writes: a new household (with id
// if the row gave none), or the fields that changed, each stamped by
// clock (which must be newer than what the household holds); and the
// persons and categories added (their ids from newID).
func (o *Outcome) Rows(id string, newID func() string, clock func() syncengine.Clock) syncengine.Bundle {
	if o.Action != Create && o.Action != Update {
		return syncengine.Bundle{}
	}
	if o.HouseholdID != "" {
		id = o.HouseholdID
	}
	v := o.row
	h := syncengine.Household{ID: id}
	set := func(r *syncengine.Register[string], val string) { *r = syncengine.NewRegister(val, clock()) }
	for _, f := range o.Changed {
		switch f {
		case FieldGrid:
			set(&h.GridID, v.GridID)
		case FieldHead:
			set(&h.HeadName, v.Head)
		case FieldAddress:
			set(&h.Address, v.Address)
		case FieldMobile:
			set(&h.PhoneMobile, v.Mobile)
		case FieldLandline:
			set(&h.PhoneLandline, v.Landline)
		case FieldWorker:
			set(&h.ResponsibleWorker, v.Worker)
		case FieldLeader:
			set(&h.ResponsibleLeader, v.Leader)
		case FieldUnit:
			set(&h.ResponsibleUnit, v.Unit)
		case FieldMembers:
			h.MemberCount = syncengine.NewRegister(v.Members, clock())
		}
	}
	var b syncengine.Bundle
	if len(o.Changed) > 0 {
		b.Households = []syncengine.Household{h}
	}
	for _, name := range o.Persons {
		p := syncengine.Person{ID: newID(), HouseholdID: id, Name: syncengine.NewRegister(name, clock())}
		if r := o.Residences[name]; r != "" {
			p.Residence = syncengine.NewRegister(r, clock())
		}
		b.Persons = append(b.Persons, p)
	}
	for _, m := range o.Moves {
		b.Persons = append(b.Persons, syncengine.Person{ID: m.PersonID, HouseholdID: id, Residence: syncengine.NewRegister(m.Residence, clock())})
	}
	for _, code := range o.Categories {
		b.Tags = append(b.Tags, syncengine.TagElement{AddID: newID(), HouseholdID: id, Category: code, Clock: clock()})
	}
	return b
}

// Mobile checks a mobile number (11 digits from 1, as China's are) and
// writes it bare: spaces, dashes and a +86 go. "" is fine.
func Mobile(s string) (string, bool) {
	d := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
	d = strings.TrimPrefix(strings.TrimPrefix(d, "+86"), "0086")
	if len(d) == 13 && strings.HasPrefix(d, "86") {
		d = d[2:]
	}
	if d == "" {
		return "", true
	}
	if len(d) != 11 || d[0] != '1' || strings.Trim(d, "0123456789") != "" {
		return "", false
	}
	return d, true
}

// Landline checks a fixed-line number: an optional area code (0 and 2
// or 3 more digits), 7 or 8 digits, an optional extension, with dashes,
// spaces or brackets between; it is written area-number[-extension].
func Landline(s string) (string, bool) {
	if strings.TrimSpace(s) == "" {
		return "", true
	}
	var groups []string
	for _, g := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" -()（）—", r) }) {
		if strings.Trim(g, "0123456789") != "" {
			return "", false
		}
		groups = append(groups, g)
	}
	area := ""
	if len(groups) > 0 && groups[0][0] == '0' {
		area, groups = groups[0], groups[1:]
		if len(groups) == 0 && len(area) >= 10 && len(area) <= 12 {
			// Written whole: 057188886666. Three-digit area codes start 01
			// or 02 (Beijing 010, Shanghai 021...); the others have four.
			n := 4
			if area[1] == '1' || area[1] == '2' {
				n = 3
			}
			area, groups = area[:n], []string{area[n:]}
		}
		if len(area) < 3 || len(area) > 4 {
			return "", false
		}
	}
	if len(groups) == 0 || len(groups) > 2 || len(groups[0]) < 7 || len(groups[0]) > 8 || groups[0][0] == '0' {
		return "", false
	}
	out := groups[0]
	if area != "" {
		out = area + "-" + out
	}
	if len(groups) == 2 {
		if len(groups[1]) > 6 {
			return "", false
		}
		out += "-" + groups[1]
	}
	return out, true
}

// residenceWords are the words a persons cell marks a status with, after
// the name in brackets: what the export writes, and what clerks write.
var residenceWords = map[string]string{
	"户籍人口": syncengine.ResidenceResident, "户籍": syncengine.ResidenceResident, "常住": syncengine.ResidenceResident,
	"resident": syncengine.ResidenceResident,
	"流动人口":     syncengine.ResidenceMigrant, "流动": syncengine.ResidenceMigrant, "migrant": syncengine.ResidenceMigrant,
	"已迁出": syncengine.ResidenceMovedAway, "迁出": syncengine.ResidenceMovedAway, "moved away": syncengine.ResidenceMovedAway,
	"moved_away": syncengine.ResidenceMovedAway,
}

// PersonCell reads a person of a persons cell: "张三", or "张三（流动人口）"
// with a residence status (any other word in brackets is part of the
// name).
func PersonCell(cell string) (name, residence string) {
	cell = strings.TrimSpace(cell)
	for _, br := range [][2]string{{"（", "）"}, {"(", ")"}} {
		if !strings.HasSuffix(cell, br[1]) {
			continue
		}
		i := strings.LastIndex(cell, br[0])
		if i <= 0 {
			continue
		}
		if r, ok := residenceWords[strings.ToLower(strings.TrimSpace(cell[i+len(br[0]):len(cell)-len(br[1])]))]; ok {
			return strings.TrimSpace(cell[:i]), r
		}
	}
	return cell, ""
}

// PersonText writes a person as a persons cell of the export holds it:
// the name, and a migrant's or a moved-away person's status in brackets
// (in Chinese when zh).
func PersonText(name, residence string, zh bool) string {
	switch residence {
	case syncengine.ResidenceMigrant:
		return name + pick(zh, "（流动人口）", "(migrant)")
	case syncengine.ResidenceMovedAway:
		return name + pick(zh, "（已迁出）", "(moved away)")
	}
	return name
}

func pick(zh bool, a, b string) string {
	if zh {
		return a
	}
	return b
}

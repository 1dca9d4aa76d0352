// Package demo generates Doorbook ledger data from a seed: households with
// persons, must-visit tags and visits, deterministic for a given seed and
// shape. It only makes rows and knows nothing of the server: server/demo
// writes them through the store for `doorbook serve --demo`, and tests,
// benchmarks and the load test use them as their fixed data set.
package demo

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Shape says how much to generate per grid.
type Shape struct {
	HouseholdsPerGrid int
	// PersonsPerHousehold is the most persons per household (0..n).
	PersonsPerHousehold int
	// VisitsPerHousehold is the average number of visits per household.
	VisitsPerHousehold float64
	// NotesBytes is the approximate size of a visit's notes.
	NotesBytes int
	// VisitDays is how many days before the generator's base the visits
	// spread over (60 if 0): a street's history for benchmarks of it.
	VisitDays int
}

// DefaultShape is the demo district: 250 households per grid, 0–3 persons,
// no visits yet.
var DefaultShape = Shape{HouseholdsPerGrid: 250, PersonsPerHousehold: 3}

// Categories are the codes of the five must-visits (五必访) used by the demo.
var Categories = []string{"petitioner", "key_person", "case_party", "vulnerable", "notable"}

// Generator produces deterministic rows.
type Generator struct {
	rng   *rand.Rand
	node  uint64
	base  time.Time
	ids   uint64
	clock uint64
}

// NewGenerator starts a generator from a seed. Rows carry clocks and ids in
// increasing time order from base.
func NewGenerator(seed uint64, base time.Time) *Generator {
	return &Generator{
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		node:  syncengine.NodeID(fmt.Sprintf("demo-%d", seed)),
		base:  base,
		clock: syncengine.PackHLC(base.UnixMilli(), 0),
	}
}

// ID returns a UUIDv7-shaped id: time-ordered like the ids devices make (so
// SQLite inserts them in key order) and random from the seed.
func (g *Generator) ID() string {
	g.ids++
	var b [16]byte
	ms := uint64(g.base.UnixMilli()) + g.ids/16
	binary.BigEndian.PutUint64(b[0:8], ms<<16|uint64(g.rng.Uint32()&0x0fff))
	binary.BigEndian.PutUint64(b[8:16], g.rng.Uint64())
	b[6] = 0x70 | b[6]&0x0f // version 7
	b[8] = 0x80 | b[8]&0x3f // variant RFC 4122
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Clock returns the next clock.
func (g *Generator) Clock() syncengine.Clock {
	g.clock++
	return syncengine.Clock{HLC: g.clock, Node: g.node}
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	given    = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅建国志文斌辉鹏飞宇浩然晨阳雪琳欣怡子涵梓轩思雨佳琪")
	roads    = []string{"东风路", "解放路", "人民路", "建设路", "和平街", "胜利街", "新华路", "中山路", "光明巷", "幸福里"}
	housing  = []string{"own", "rented", "public", "relocated"}
	relation = []string{"spouse", "child", "parent", "sibling", "grandchild", "tenant"}
	notes    = []string{"家中情况稳定", "反映小区路灯不亮", "老人行动不便，需要帮扶", "对社区治安满意", "邻里纠纷已调解",
		"发放平安历书和公开信", "询问低保政策", "子女在外务工", "希望加强夜间巡逻", "签订平安承诺书"}
)

func (g *Generator) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// Name returns a plausible Chinese name.
func (g *Generator) Name() string {
	var sb strings.Builder
	sb.WriteRune(surnames[g.rng.IntN(len(surnames))])
	for range 1 + g.rng.IntN(2) {
		sb.WriteRune(given[g.rng.IntN(len(given))])
	}
	return sb.String()
}

func (g *Generator) phone() string {
	return fmt.Sprintf("13%d%08d", g.rng.IntN(10), g.rng.IntN(100000000))
}

// Notes returns about n bytes of visit notes.
func (g *Generator) Notes(n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		if sb.Len() > 0 {
			sb.WriteString("；")
		}
		sb.WriteString(g.pick(notes))
	}
	return sb.String()
}

// Household generates one household in grid, with its persons and tags.
func (g *Generator) Household(gridID string, shape Shape, workerName string) (syncengine.Household, []syncengine.Person, []syncengine.TagElement) {
	c := g.Clock()
	s := func(v string) syncengine.Register[string] { return syncengine.NewRegister(v, c) }
	members := 1 + g.rng.IntN(max(1, shape.PersonsPerHousehold)+1)
	h := syncengine.Household{
		ID:                g.ID(),
		GridID:            s(gridID),
		HeadName:          s(g.Name()),
		Address:           s(fmt.Sprintf("%s%d号%d栋%d单元%d室", g.pick(roads), 1+g.rng.IntN(200), 1+g.rng.IntN(30), 1+g.rng.IntN(6), 101+g.rng.IntN(1800))),
		PhoneMobile:       s(g.phone()),
		PhoneLandline:     s(fmt.Sprintf("0731-8%07d", g.rng.IntN(10000000))),
		ResponsibleWorker: s(workerName),
		ResponsibleLeader: s(g.Name()),
		ResponsibleUnit:   s(g.pick([]string{"街道综治办", "社区居委会", "派出所", "区民政局", "区教育局"})),
		MemberCount:       syncengine.NewRegister(int64(members), c),
		HousingType:       s(g.pick(housing)),
		Notes:             s(""),
	}
	var persons []syncengine.Person
	for range g.rng.IntN(shape.PersonsPerHousehold + 1) {
		pc := g.Clock()
		ps := func(v string) syncengine.Register[string] { return syncengine.NewRegister(v, pc) }
		persons = append(persons, syncengine.Person{
			ID: g.ID(), HouseholdID: h.ID,
			Name:      ps(g.Name()),
			IDNumber:  ps(fmt.Sprintf("430102%04d%02d%02d%04d", 1940+g.rng.IntN(80), 1+g.rng.IntN(12), 1+g.rng.IntN(28), g.rng.IntN(10000))),
			Gender:    ps(g.pick([]string{"male", "female"})),
			BirthDate: ps(fmt.Sprintf("%04d-%02d-%02d", 1940+g.rng.IntN(80), 1+g.rng.IntN(12), 1+g.rng.IntN(28))),
			Phone:     ps(g.phone()),
			Relation:  ps(g.pick(relation)),
		})
	}
	var tags []syncengine.TagElement
	// About one household in five is on a must-visit list; a few on two.
	for range g.tagCount() {
		tags = append(tags, syncengine.TagElement{AddID: g.ID(), HouseholdID: h.ID, Category: g.pick(Categories), Clock: g.Clock()})
	}
	return h, persons, tags
}

func (g *Generator) tagCount() int {
	switch x := g.rng.IntN(100); {
	case x < 78:
		return 0
	case x < 96:
		return 1
	case x < 99:
		return 2
	default:
		return 3
	}
}

// Visit generates a visit to household by visitor at a time in the 60
// days before base.
func (g *Generator) Visit(householdID, visitorID string, notesBytes int) syncengine.Visit {
	return g.visit(householdID, visitorID, notesBytes, 60)
}

func (g *Generator) visit(householdID, visitorID string, notesBytes, days int) syncengine.Visit {
	form := syncengine.FormInPerson
	if g.rng.IntN(4) == 0 {
		form = syncengine.FormPhone
	}
	return syncengine.Visit{
		ID: g.ID(), HouseholdIDs: []string{householdID}, VisitorID: visitorID,
		VisitedAt: g.base.Add(-time.Duration(g.rng.IntN(days*24)) * time.Hour).UTC().Truncate(time.Millisecond),
		Form:      form, Notes: g.Notes(notesBytes), Clock: g.Clock(),
	}
}

// Grid generates the households of one grid (and, if visitorID is set, an
// average of shape.VisitsPerHousehold visits each by that visitor).
func (g *Generator) Grid(gridID string, shape Shape, workerName, visitorID string) syncengine.Bundle {
	var b syncengine.Bundle
	for range shape.HouseholdsPerGrid {
		h, ps, ts := g.Household(gridID, shape, workerName)
		b.Households = append(b.Households, h)
		b.Persons = append(b.Persons, ps...)
		b.Tags = append(b.Tags, ts...)
		if visitorID == "" {
			continue
		}
		n := int(shape.VisitsPerHousehold)
		if g.rng.Float64() < shape.VisitsPerHousehold-float64(n) {
			n++
		}
		for range n {
			b.Visits = append(b.Visits, g.visit(h.ID, visitorID, shape.NotesBytes, cmp.Or(shape.VisitDays, 60)))
		}
	}
	return b
}

package fieldwork

import "github.com/doorbook/doorbook/syncengine"

// DefaultCategory is one category of the default set.
type DefaultCategory struct {
	Code, Parent, NameZH, NameEN string
	RevisitDays                  int64
	KeyGroup                     bool
}

// DefaultCategories are the five must-visits (五必访) of DOMAIN.md with their
// sub-groups, for an admin to load and then adapt. Sub-groups take their
// group's interval and key-group flag.
var DefaultCategories = []DefaultCategory{
	{"petitioner", "", "上访老户", "long-time petitioner", 30, true},
	{"key_person", "", "重点对象", "key person", 30, true},
	{"released_prisoner", "key_person", "刑释人员", "released prisoner", 0, false},
	{"drug_user", "key_person", "社会吸毒人员", "drug user", 0, false},
	{"idle_youth", "key_person", "闲散青少年", "idle youth", 0, false},
	{"community_correction", "key_person", "社区矫正人员", "community-corrections person", 0, false},
	{"mental_illness", "key_person", "肇事肇祸精神病人", "mentally ill person with a record of harm", 0, false},
	{"case_party", "", "案件当事人", "party to a case", 60, true},
	{"crime_victim_family", "case_party", "刑事案件受害人家属", "family of a crime victim", 0, false},
	{"vulnerable", "", "弱势困难户", "vulnerable household", 90, false},
	{"five_guarantees", "vulnerable", "五保户", "five-guarantees elderly", 0, false},
	{"relocated", "vulnerable", "拆迁户", "relocated household", 0, false},
	{"laid_off", "vulnerable", "下岗工人家庭", "laid-off worker's family", 0, false},
	{"zero_employment", "vulnerable", "零就业家庭", "zero-employment family", 0, false},
	{"notable", "", "地方知名人士", "local notable", 180, false},
	{"deputy", "notable", "两代表一委员", "deputy or committee member", 0, false},
	{"old_party_member", "notable", "老党员", "old party member", 0, false},
	{"retired_cadre", "notable", "离退休干部", "retired cadre", 0, false},
	{"retired_teacher", "notable", "退休教师", "retired teacher", 0, false},
}

// DefaultCategorySet builds the default categories, every field stamped
// with a clock from now.
func DefaultCategorySet(now func() syncengine.Clock) []syncengine.Category {
	out := make([]syncengine.Category, len(DefaultCategories))
	for i, d := range DefaultCategories {
		c := now()
		out[i] = syncengine.Category{
			Code:        d.Code,
			NameZH:      syncengine.NewRegister(d.NameZH, c),
			NameEN:      syncengine.NewRegister(d.NameEN, c),
			ParentCode:  syncengine.NewRegister(d.Parent, c),
			RevisitDays: syncengine.NewRegister(d.RevisitDays, c),
			KeyGroup:    syncengine.NewRegister(d.KeyGroup, c),
		}
	}
	return out
}

// StandardSurvey is the questionnaire of "two rates and one degree" (两率一度):
// awareness, satisfaction with public safety, sense of safety.
var StandardSurvey = []syncengine.Question{
	{Code: "aware", TextZH: "是否知晓本次活动", TextEN: "aware of the campaign", Scale: 2, PositiveFrom: 2},
	{Code: "satisfied", TextZH: "对社会治安是否满意", TextEN: "satisfied with public safety", Scale: 5, PositiveFrom: 4},
	{Code: "safe", TextZH: "是否有安全感", TextEN: "feels safe", Scale: 5, PositiveFrom: 4},
}

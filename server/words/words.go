// Package words holds the words the offices use for the domain's values,
// in Chinese and in English: roles, visit forms, materials, findings,
// revisit reasons, org levels, amendments and item states. The exports and
// the web console both say them so, from here.
package words

import (
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/syncengine"
)

// Of is k's word in m: the Chinese if zh, else the English; "" if m has
// none.
func Of[K comparable](m map[K][2]string, k K, zh bool) string {
	n, ok := m[k]
	switch {
	case !ok:
		return ""
	case zh:
		return n[0]
	default:
		return n[1]
	}
}

// Role names a worker's role (syncengine's role numbers, as the API's).
var Role = map[int32][2]string{
	1: {"网格员", "grid worker"},
	2: {"社区工作者", "community worker"},
	3: {"干部", "cadre"},
	4: {"社区民警", "police officer"},
	5: {"领导", "leader"},
	6: {"教师", "teacher"},
	7: {"区级领导", "district leader"},
	8: {"部门和镇街领导", "department or town leader"},
}

// Form names a visit's form.
var Form = map[syncengine.VisitForm][2]string{
	syncengine.FormInPerson:       {"上门个访", "in person"},
	syncengine.FormPhone:          {"电话", "phone"},
	syncengine.FormTalk:           {"恳谈会", "talk"},
	syncengine.FormOpinionMeeting: {"意见征求会", "opinion meeting"},
	syncengine.FormQASession:      {"疑难解答会", "Q&A session"},
}

// Material names what a visit handed out.
var Material = map[syncengine.Material][2]string{
	syncengine.MaterialOpenLetter:     {"公开信", "open letter"},
	syncengine.MaterialSafetyCalendar: {"平安历书", "safety calendar"},
	syncengine.MaterialPledgeForm:     {"承诺书", "pledge form"},
}

// Finding names what a visit found.
var Finding = map[syncengine.FindingKind][2]string{
	syncengine.FindingDispute:         {"矛盾纠纷", "dispute"},
	syncengine.FindingPetitionBacklog: {"信访积案", "petition backlog"},
	syncengine.FindingHazard:          {"治安隐患", "public-safety hazard"},
	syncengine.FindingHardship:        {"困难群众", "hardship"},
	syncengine.FindingHelpRequest:     {"民生实事", "request for help"},
}

// Reason names why a visit asks for a revisit.
var Reason = map[syncengine.RevisitReason][2]string{
	syncengine.RevisitSpecialDifficulty: {"特殊困难", "special difficulty"},
	syncengine.RevisitImportantRequest:  {"重要诉求", "important request"},
	syncengine.RevisitUnstableMood:      {"情绪不稳", "unstable mood"},
	syncengine.RevisitStrongComplaint:   {"强烈不满", "strong complaint"},
}

// Level names a level of the org tree (the API's level numbers).
var Level = map[int32][2]string{
	1: {"区", "district"},
	2: {"街道", "street"},
	3: {"社区", "community"},
	4: {"网格", "grid"},
}

// Amendment names what an amendment of a visit does.
var Amendment = map[syncengine.AmendmentKind][2]string{
	syncengine.AmendCorrect:     {"更正", "correction"},
	syncengine.AmendVoid:        {"作废", "void"},
	syncengine.AmendItemAssign:  {"挂牌督办", "assigned"},
	syncengine.AmendItemResolve: {"解决", "resolved"},
	syncengine.AmendItemClose:   {"销号", "closed off"},
}

// ItemState names where a tracked item stands.
var ItemState = map[syncengine.ItemState][2]string{
	syncengine.ItemReported: {"登记", "reported"},
	syncengine.ItemAssigned: {"挂牌督办", "assigned"},
	syncengine.ItemResolved: {"已解决", "resolved"},
	syncengine.ItemClosed:   {"已销号", "closed off"},
}

// Residence names a person's residence status.
var Residence = map[string][2]string{
	syncengine.ResidenceResident:  {"户籍人口", "resident"},
	syncengine.ResidenceMigrant:   {"流动人口", "migrant"},
	syncengine.ResidenceMovedAway: {"已迁出", "moved away"},
}

// ImportAction names what a ledger import does with a row.
var ImportAction = map[ledger.Action][2]string{
	ledger.Create:    {"新增", "create"},
	ledger.Update:    {"更新", "update"},
	ledger.Unchanged: {"无变化", "unchanged"},
	ledger.Refuse:    {"拒绝", "refused"},
}

// ImportRefusal says why a ledger import refuses a row.
var ImportRefusal = map[ledger.Refusal][2]string{
	ledger.RefusalBadID:           {"户编号格式不对", "the household id is not an id"},
	ledger.RefusalMissingGrid:     {"未填网格", "no grid"},
	ledger.RefusalUnknownGrid:     {"本级下没有此网格", "no grid of this node has this name"},
	ledger.RefusalAmbiguousGrid:   {"网格重名，请填写社区", "several grids have this name: give the community"},
	ledger.RefusalMissingHead:     {"未填户主姓名", "no head of household"},
	ledger.RefusalBadMobile:       {"手机号码不对", "not a mobile number"},
	ledger.RefusalBadLandline:     {"固定电话不对", "not a landline number"},
	ledger.RefusalBadMembers:      {"人口数不对", "not a member count"},
	ledger.RefusalUnknownCategory: {"没有此类别", "no such category"},
	ledger.RefusalNotHere:         {"此户不在本级下或已删除", "the household is outside this node, or deleted"},
	ledger.RefusalMoved:           {"此户在另一网格，请用迁移", "the household is in another grid: move it instead"},
	ledger.RefusalAmbiguousMatch:  {"多户网格、地址和户主相同，请填写户编号", "several households match: give the household id"},
	ledger.RefusalDuplicate:       {"与前面一行重复", "repeats an earlier row"},
	ledger.RefusalTooMany:         {"成员或类别超出上限", "over the caps of persons or categories"},
	ledger.RefusalInvalid:         {"内容超长或不是文本", "a value too long, or not text"},
}

// Package words holds the words the offices use for the domain's values,
// in Chinese and in English: roles, visit forms, materials, findings,
// revisit reasons, org levels, amendments and item states. The exports and
// the web console both say them so, from here.
package words

import "github.com/doorbook/doorbook/syncengine"

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

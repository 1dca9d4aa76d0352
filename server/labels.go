package server

import (
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// Labels of reports and exports, in the words the offices use (zh) or in
// English.
type labels struct {
	zh bool
}

func (l labels) pick(zh, en string) string {
	if l.zh {
		return zh
	}
	return en
}

var roleNames = map[pb.WorkerRole][2]string{
	pb.WorkerRole_WORKER_ROLE_GRID_WORKER:      {"网格员", "grid worker"},
	pb.WorkerRole_WORKER_ROLE_COMMUNITY_WORKER: {"社区工作者", "community worker"},
	pb.WorkerRole_WORKER_ROLE_CADRE:            {"干部", "cadre"},
	pb.WorkerRole_WORKER_ROLE_POLICE_OFFICER:   {"社区民警", "police officer"},
	pb.WorkerRole_WORKER_ROLE_LEADER:           {"领导", "leader"},
	pb.WorkerRole_WORKER_ROLE_TEACHER:          {"教师", "teacher"},
}

func (l labels) role(r int32) string {
	if n, ok := roleNames[pb.WorkerRole(r)]; ok {
		return l.pick(n[0], n[1])
	}
	return ""
}

var formNames = map[syncengine.VisitForm][2]string{
	syncengine.FormInPerson:       {"上门个访", "in person"},
	syncengine.FormPhone:          {"电话", "phone"},
	syncengine.FormTalk:           {"恳谈会", "talk"},
	syncengine.FormOpinionMeeting: {"意见征求会", "opinion meeting"},
	syncengine.FormQASession:      {"疑难解答会", "Q&A session"},
}

func (l labels) form(f syncengine.VisitForm) string {
	if n, ok := formNames[f]; ok {
		return l.pick(n[0], n[1])
	}
	return f.String()
}

var materialNames = map[syncengine.Material][2]string{
	syncengine.MaterialOpenLetter:     {"公开信", "open letter"},
	syncengine.MaterialSafetyCalendar: {"平安历书", "safety calendar"},
	syncengine.MaterialPledgeForm:     {"承诺书", "pledge form"},
}

var findingNames = map[syncengine.FindingKind][2]string{
	syncengine.FindingDispute:         {"矛盾纠纷", "dispute"},
	syncengine.FindingPetitionBacklog: {"信访积案", "petition backlog"},
	syncengine.FindingHazard:          {"治安隐患", "public-safety hazard"},
	syncengine.FindingHardship:        {"困难群众", "hardship"},
	syncengine.FindingHelpRequest:     {"民生实事", "request for help"},
}

var reasonNames = map[syncengine.RevisitReason][2]string{
	syncengine.RevisitSpecialDifficulty: {"特殊困难", "special difficulty"},
	syncengine.RevisitImportantRequest:  {"重要诉求", "important request"},
	syncengine.RevisitUnstableMood:      {"情绪不稳", "unstable mood"},
	syncengine.RevisitStrongComplaint:   {"强烈不满", "strong complaint"},
}

func name[K comparable](l labels, names map[K][2]string, k K) string {
	if n, ok := names[k]; ok {
		return l.pick(n[0], n[1])
	}
	return ""
}

func (l labels) ledgerHeader() []string {
	if l.zh {
		return []string{"户编号", "网格", "户主姓名", "地址", "手机", "固定电话", "包户责任人", "包户领导", "包户单位", "人口数", "家庭成员", "五必访类别", "最近走访"}
	}
	return []string{"household id", "grid", "head of household", "address", "mobile", "landline", "responsible worker",
		"responsible leader", "responsible unit", "members", "persons", "categories", "last visit"}
}

func (l labels) visitHeader() []string {
	if l.zh {
		return []string{"走访人", "角色", "走访日期", "走访形式", "户数", "走访户", "地址", "发放资料", "发现问题", "回访", "民情日记", "状态"}
	}
	return []string{"visitor", "role", "date", "form", "households", "heads of household", "addresses", "materials",
		"findings", "revisit", "notes", "status"}
}

func (l labels) figuresHeader() []string {
	if l.zh {
		return []string{"排名", "单位", "层级", "户数", "已走访户数", "覆盖率", "重点人群户数", "重点人群已走访", "重点人群走访率",
			"逾期必访户", "待回访", "逾期回访", "未办结事项", "逾期事项"}
	}
	return []string{"rank", "node", "level", "households", "visited", "coverage", "key-group households", "key-group visited",
		"key-group rate", "must-visit overdue", "revisits open", "revisits overdue", "items open", "items overdue"}
}

func (l labels) quotaHeader() []string {
	if l.zh {
		return []string{"走访人", "角色", "已走访户数", "任务户数", "完成率"}
	}
	return []string{"visitor", "role", "households visited", "quota", "attainment"}
}

func (l labels) surveyHeader() []string {
	if l.zh {
		return []string{"单位", "问题", "答复数", "正面数", "正面率"}
	}
	return []string{"node", "question", "answered", "positive", "rate"}
}

func (l labels) level(lv int32) string {
	names := [][2]string{{"", ""}, {"区", "district"}, {"街道", "street"}, {"社区", "community"}, {"网格", "grid"}}
	if lv >= 0 && int(lv) < len(names) {
		return l.pick(names[lv][0], names[lv][1])
	}
	return ""
}

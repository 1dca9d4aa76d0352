package server

import (
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/server/words"
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

func (l labels) role(r int32) string { return words.Of(words.Role, r, l.zh) }

func (l labels) form(f syncengine.VisitForm) string {
	if n := words.Of(words.Form, f, l.zh); n != "" {
		return n
	}
	return f.String()
}

func (l labels) ledgerHeader() []string { return ledger.Header(l.zh) }

func (l labels) visitHeader() []string {
	if l.zh {
		return []string{"走访人", "角色", "走访日期", "走访形式", "户数", "走访户", "地址", "发放资料", "发现问题", "回访", "民情日记", "状态", "走访定位", "附件"}
	}
	return []string{"visitor", "role", "date", "form", "households", "heads of household", "addresses", "materials",
		"findings", "revisit", "notes", "status", "position", "attachments"}
}

func (l labels) itemsHeader() []string {
	if l.zh {
		return []string{"户主姓名", "地址", "网格", "问题类型", "问题描述", "登记日期", "登记人", "责任单位", "配合单位", "办结时限", "状态", "办理情况", "逾期天数", "升级督办至"}
	}
	return []string{"head of household", "address", "grid", "finding", "description", "reported", "reported by", "unit", "co-units", "deadline",
		"state", "how it stands", "days overdue", "escalated to"}
}

func (l labels) figuresHeader() []string {
	if l.zh {
		return []string{"排名", "单位", "层级", "户数", "已走访户数", "覆盖率", "重点人群户数", "重点人群已走访", "重点人群走访率",
			"逾期必访户", "待回访", "逾期回访", "未办结事项", "逾期事项", "得分", "社区奖惩（元）", "联点干部奖惩（元）"}
	}
	return []string{"rank", "node", "level", "households", "visited", "coverage", "key-group households", "key-group visited",
		"key-group rate", "must-visit overdue", "revisits open", "revisits overdue", "items open", "items overdue",
		"score", "community reward (yuan)", "link cadre reward (yuan)"}
}

func (l labels) weekHeader() []string {
	if l.zh {
		return []string{"周次", "开始日期", "结束日期", "户数", "已走访户数", "覆盖率", "重点人群走访率", "任务完成率", "本周发现事项", "本周销号事项", "未办结事项"}
	}
	return []string{"week", "from", "until", "households", "visited", "coverage", "key-group rate", "quota attainment",
		"items found", "items closed off", "items open"}
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

func (l labels) level(lv int32) string { return words.Of(words.Level, lv, l.zh) }

package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/doorbook/doorbook/syncengine"
)

// details is a visit's record beyond who, where and when, stored as one JSON
// text: read whole when a visit is loaded, never queried by SQL. It is the
// encoding of internal/statedb (which keeps it unexported), so that the two
// backends' rows convert one to the other as they are.
type details struct {
	Materials []syncengine.Material      `json:"m,omitempty"`
	Findings  []finding                  `json:"f,omitempty"`
	Reasons   []syncengine.RevisitReason `json:"r,omitempty"`
	Campaign  string                     `json:"c,omitempty"`
	Answers   []answer                   `json:"a,omitempty"`
}

type finding struct {
	Kind syncengine.FindingKind `json:"k"`
	Note string                 `json:"n,omitempty"`
}

type answer struct {
	Question string `json:"q"`
	Value    int32  `json:"v"`
}

func encodeDetails(v *syncengine.Visit) (string, error) {
	d := details{Materials: v.Materials, Reasons: v.RevisitReasons, Campaign: v.CampaignID}
	for _, f := range v.Findings {
		d.Findings = append(d.Findings, finding{f.Kind, f.Note})
	}
	for _, a := range v.Answers {
		d.Answers = append(d.Answers, answer{a.Question, a.Value})
	}
	if len(d.Materials)+len(d.Findings)+len(d.Reasons)+len(d.Answers) == 0 && d.Campaign == "" {
		return "", nil
	}
	b, err := json.Marshal(d)
	return string(b), err
}

func decodeDetails(text string, v *syncengine.Visit) error {
	if text == "" {
		return nil
	}
	var d details
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return fmt.Errorf("decode details: %w", err)
	}
	v.Materials, v.RevisitReasons, v.CampaignID = d.Materials, d.Reasons, d.Campaign
	for _, f := range d.Findings {
		v.Findings = append(v.Findings, syncengine.Finding{Kind: f.Kind, Note: f.Note})
	}
	for _, a := range d.Answers {
		v.Answers = append(v.Answers, syncengine.SurveyAnswer{Question: a.Question, Value: a.Value})
	}
	return nil
}

// tracked counts a visit's findings that are tracked items.
func tracked(v *syncengine.Visit) int {
	n := 0
	for _, f := range v.Findings {
		if f.Kind.Tracked() {
			n++
		}
	}
	return n
}

package syncengine

import (
	"encoding/json"
	"fmt"
)

// storedDetails is a visit's record beyond who, where and when, stored as
// one JSON text: read whole when a visit is loaded, never queried by SQL.
type storedDetails struct {
	Materials []Material      `json:"m,omitempty"`
	Findings  []storedFinding `json:"f,omitempty"`
	Reasons   []RevisitReason `json:"r,omitempty"`
	Campaign  string          `json:"c,omitempty"`
	Answers   []storedAnswer  `json:"a,omitempty"`
}

type storedFinding struct {
	Kind FindingKind `json:"k"`
	Note string      `json:"n,omitempty"`
}

type storedAnswer struct {
	Question string `json:"q"`
	Value    int32  `json:"v"`
}

// EncodeDetails is the storage form of a visit's details (materials,
// findings, revisit reasons, campaign, answers) that every store of visits
// keeps, the phone's and the server's backends alike: one JSON text, "" for
// none.
func EncodeDetails(v *Visit) (string, error) {
	d := storedDetails{Materials: v.Materials, Reasons: v.RevisitReasons, Campaign: v.CampaignID}
	for _, f := range v.Findings {
		d.Findings = append(d.Findings, storedFinding(f))
	}
	for _, a := range v.Answers {
		d.Answers = append(d.Answers, storedAnswer(a))
	}
	if len(d.Materials)+len(d.Findings)+len(d.Reasons)+len(d.Answers) == 0 && d.Campaign == "" {
		return "", nil
	}
	b, err := json.Marshal(d)
	return string(b), err
}

// DecodeDetails reads EncodeDetails's text into v.
func DecodeDetails(text string, v *Visit) error {
	if text == "" {
		return nil
	}
	var d storedDetails
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return fmt.Errorf("decode details: %w", err)
	}
	v.Materials, v.RevisitReasons, v.CampaignID = d.Materials, d.Reasons, d.Campaign
	for _, f := range d.Findings {
		v.Findings = append(v.Findings, Finding(f))
	}
	for _, a := range d.Answers {
		v.Answers = append(v.Answers, SurveyAnswer(a))
	}
	return nil
}

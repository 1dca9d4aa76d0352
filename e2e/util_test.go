package e2e

import (
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

func sdkVisit(households ...string) sdk.VisitInput {
	form := syncengine.FormInPerson
	if len(households) > 1 {
		form = syncengine.FormOpinionMeeting
	}
	return sdk.VisitInput{HouseholdIDs: households, Form: form, Notes: "visited"}
}

// sdkVisitDaysAgo is sdkVisit made days days ago.
func sdkVisitDaysAgo(days int, households ...string) sdk.VisitInput {
	v := sdkVisit(households...)
	v.VisitedAt = time.Now().AddDate(0, 0, -days)
	return v
}

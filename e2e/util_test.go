package e2e

import (
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

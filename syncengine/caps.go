package syncengine

import (
	"fmt"
	"time"
)

// Caps on what one household may hold. Beyond them a write is refused
// (ErrLimit): 200,000 tags on one household would cost every co-worker's
// phone seconds and hundreds of megabytes at its next sync. They are far
// above what fieldwork needs: a household has a handful of categories and
// residents, and is visited a few times a week at most.
const (
	// MaxLiveTagsPerHousehold bounds the tag adds a household shows.
	MaxLiveTagsPerHousehold = 64
	// MaxTagElementsPerHousehold bounds its tag adds and removals together
	// (removals are kept until the collection horizon).
	MaxTagElementsPerHousehold = 1024
	// MaxPersonsPerHousehold bounds the persons linked to a household.
	MaxPersonsPerHousehold = 200
	// MaxVisitsPerHouseholdPerDay bounds the visits to one household on
	// one day (Beijing time); a group visit counts for each household.
	MaxVisitsPerHouseholdPerDay = 100
)

// ChinaTime is the time zone of the offices and the workers: China
// Standard Time, no daylight saving. Days (of visits, deadlines, campaigns
// in the console and exports) are counted in it.
var ChinaTime = time.FixedZone("CST", 8*60*60)

// VisitDay is the day, Beijing time, that t falls on: [start, end).
func VisitDay(t time.Time) (start, end time.Time) {
	y, m, d := t.In(ChinaTime).Date()
	start = time.Date(y, m, d, 0, 0, 0, 0, ChinaTime)
	return start, start.AddDate(0, 0, 1)
}

// CapError is the error of a write past one of the caps.
func CapError(what string, n, limit int) error {
	return fmt.Errorf("%w: %s: %d, at most %d", ErrLimit, what, n, limit)
}

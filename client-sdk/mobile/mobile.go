// Package mobile is the SDK as a phone app calls it: a facade that
// `gomobile bind` (and gobind) turns into a Java/Kotlin and an
// Objective-C/Swift library.
//
// gobind passes only numbers, strings, booleans, byte slices, structs of
// those and interfaces, so structured values cross as JSON: the SDK's own
// Go types (sdk.VisitInput, sdk.HouseholdSummary, fieldwork.DueItem, ...)
// as encoding/json writes and reads them, field names as in Go, times in
// RFC 3339, enums as the API's numbers. Every call blocks until done; an
// app calls from a background thread. Errors carry a stable code first
// ("locked: ..."): see the Code constants and ErrorCode.
package mobile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

// SyncListener hears from the background sync loop (StartSync) and from
// every sync's progress. Its methods run one at a time on a goroutine of
// their own, never on the one syncing: a listener may call any method of
// the Replica (StopSync, Close) without waiting on itself. An app hands the
// news to its UI thread.
type SyncListener interface {
	// OnSync follows each sync: its report as JSON (sdk.SyncReport), and
	// on failure the error's code and message ("" when it succeeded).
	OnSync(reportJSON, errorCode, errorMessage string)
	// OnProgress reports a sync's phase ("push", "bootstrap", "pull") and
	// how far it is (total 0 when unknown).
	OnProgress(phase string, done, total int64)
}

// Replica is a worker's replica on the phone.
type Replica struct {
	r        *sdk.Replica
	listener atomic.Pointer[listenerBox]

	mu      sync.Mutex
	closed  bool
	stop    context.CancelFunc
	stopped chan struct{}
	trigger chan struct{}
	// events carries the listener's calls to the goroutine that makes
	// them (see dispatch).
	events chan func()
}

// eventBacklog is how many calls to the listener may wait; past it, more
// progress is dropped rather than held up the sync.
const eventBacklog = 64

type listenerBox struct{ l SyncListener }

// Open opens (or creates) the replica in the file at path, in the app's
// private storage.
func Open(path string) (*Replica, error) { return OpenApp(path, "") }

// OpenApp is Open for an app that names its version: each sync tells the
// server, and admins see which phones run which version.
func OpenApp(path, appVersion string) (*Replica, error) {
	m := &Replica{events: make(chan func(), eventBacklog)}
	r, err := sdk.Open(context.Background(), path, sdk.WithProgress(func(p sdk.Progress) {
		m.send(func(l SyncListener) { l.OnProgress(p.Phase, int64(p.Done), int64(p.Total)) })
	}), sdk.WithAppVersion(appVersion))
	if err != nil {
		return nil, wrap(err)
	}
	m.r = r
	go m.dispatch()
	return m, nil
}

// dispatch calls the listener, one call at a time, until Close.
func (m *Replica) dispatch() {
	for f := range m.events {
		f()
	}
}

// send queues a call to the listener set when it runs, or drops it when the
// listener is too slow: a sync never waits on the app.
func (m *Replica) send(call func(SyncListener)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	select {
	case m.events <- func() {
		if b := m.listener.Load(); b != nil {
			call(b.l)
		}
	}:
	default:
	}
}

// SetListener sets (or, with nil, clears) the listener of progress and of
// the background loop's syncs.
func (m *Replica) SetListener(l SyncListener) {
	if l == nil {
		m.listener.Store(nil)
		return
	}
	m.listener.Store(&listenerBox{l: l})
}

// Close stops the background loop and closes the replica. Calls after it
// fail; StartSync does nothing.
func (m *Replica) Close() error {
	m.StopSync()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.events)
	m.mu.Unlock()
	return wrap(m.r.Close())
}

// Enroll enrols the phone with a code an admin gave (or the QR code's
// link's parts).
func (m *Replica) Enroll(serverURL, code, deviceName string) error {
	return wrap(m.r.Enroll(context.Background(), serverURL, code, deviceName))
}

// Sync pushes, bootstraps and pulls once, and returns the report as JSON.
func (m *Replica) Sync() (string, error) {
	rep, err := m.r.Sync(context.Background())
	if err != nil {
		return "", wrap(err)
	}
	return toJSON(reportJSON(rep))
}

// syncReport is an sdk.SyncReport as an app reads it: the upload lane's
// error as text.
type syncReport struct {
	sdk.SyncReport
	Attachments attachmentReport
}

type attachmentReport struct {
	Uploaded, Pending, Refused int
	Bytes                      int64
	// Error is why the upload of files stopped short ("" if it did not).
	Error string
}

func reportJSON(rep sdk.SyncReport) syncReport {
	a := rep.Attachments
	out := syncReport{SyncReport: rep, Attachments: attachmentReport{Uploaded: a.Uploaded, Pending: a.Pending, Refused: a.Refused, Bytes: a.Bytes}}
	if a.Err != nil {
		out.Attachments.Error = a.Err.Error()
	}
	return out
}

// StartSync syncs in the background every intervalSeconds while syncs
// succeed, backing off after failures, until StopSync or Close. A second
// call restarts the loop with the new interval.
func (m *Replica) StartSync(intervalSeconds int64) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped, trigger := make(chan struct{}), make(chan struct{}, 1)
	// The old loop, if any, is swapped for the new one in one step: two
	// calls at once leave one loop, not an orphan.
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		cancel()
		return
	}
	oldStop, oldStopped := m.stop, m.stopped
	m.stop, m.stopped, m.trigger = cancel, stopped, trigger
	m.mu.Unlock()
	if oldStop != nil {
		oldStop()
		<-oldStopped
	}
	go func() {
		defer close(stopped)
		_ = m.r.RunSync(ctx, sdk.LoopOptions{
			Interval: time.Duration(intervalSeconds) * time.Second,
			Trigger:  trigger,
			OnResult: func(rep sdk.SyncReport, err error) {
				report, _ := toJSON(reportJSON(rep))
				code, msg := "", ""
				if err != nil {
					code, msg = ErrorCode(wrap(err)), err.Error()
				}
				m.send(func(l SyncListener) { l.OnSync(report, code, msg) })
			},
		})
	}()
}

// SyncNow asks the background loop to sync at once (after a write, or when
// the network comes back); without a loop it does nothing.
func (m *Replica) SyncNow() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.trigger != nil {
		select {
		case m.trigger <- struct{}{}:
		default: // one is asked already
		}
	}
}

// StopSync stops the background loop and waits for a sync in flight to
// end.
func (m *Replica) StopSync() {
	m.mu.Lock()
	stop, stopped := m.stop, m.stopped
	m.stop, m.stopped, m.trigger = nil, nil, nil
	m.mu.Unlock()
	if stop != nil {
		stop()
		<-stopped
	}
}

// Status is the replica's state as JSON (sdk.Status): enrolled, pending
// changes, last sync, locked or revoked.
func (m *Replica) Status() (string, error) {
	st, err := m.r.Status(context.Background())
	if err != nil {
		return "", wrap(err)
	}
	return toJSON(st)
}

// RegisterHousehold registers a household in a grid of the worker's; the
// ledger fields are a JSON object of strings ({"head_name": "...", ...}).
func (m *Replica) RegisterHousehold(gridID, fieldsJSON string) (string, error) {
	fields, err := fieldsOf(fieldsJSON)
	if err != nil {
		return "", err
	}
	id, err := m.r.RegisterHousehold(context.Background(), gridID, fields)
	return id, wrap(err)
}

// EditHousehold changes the ledger fields given.
func (m *Replica) EditHousehold(id, fieldsJSON string) error {
	fields, err := fieldsOf(fieldsJSON)
	if err != nil {
		return err
	}
	return wrap(m.r.EditHousehold(context.Background(), id, fields))
}

// DeleteHousehold deletes a household registered by mistake.
func (m *Replica) DeleteHousehold(id string) error {
	return wrap(m.r.DeleteHousehold(context.Background(), id))
}

// AddPerson adds a person to a household and returns the person's id.
func (m *Replica) AddPerson(householdID, fieldsJSON string) (string, error) {
	fields, err := fieldsOf(fieldsJSON)
	if err != nil {
		return "", err
	}
	id, err := m.r.AddPerson(context.Background(), householdID, fields)
	return id, wrap(err)
}

// EditPerson changes a person's fields given.
func (m *Replica) EditPerson(id, fieldsJSON string) error {
	fields, err := fieldsOf(fieldsJSON)
	if err != nil {
		return err
	}
	return wrap(m.r.EditPerson(context.Background(), id, fields))
}

// AddTag puts a household in a must-visit category; RemoveTag takes it out.
func (m *Replica) AddTag(householdID, category string) error {
	return wrap(m.r.AddTag(context.Background(), householdID, category))
}

// RemoveTag takes a household out of a must-visit category.
func (m *Replica) RemoveTag(householdID, category string) error {
	return wrap(m.r.RemoveTag(context.Background(), householdID, category))
}

// AddPersonTag puts one person of a household in a must-visit category
// (the household counts it); RemovePersonTag takes them out.
func (m *Replica) AddPersonTag(personID, category string) error {
	return wrap(m.r.AddPersonTag(context.Background(), personID, category))
}

// RemovePersonTag takes a person out of a must-visit category.
func (m *Replica) RemovePersonTag(personID, category string) error {
	return wrap(m.r.RemovePersonTag(context.Background(), personID, category))
}

// RecordVisit records a visit (an sdk.VisitInput as JSON) and returns its
// id.
func (m *Replica) RecordVisit(visitJSON string) (string, error) {
	var in sdk.VisitInput
	if err := fromJSON(visitJSON, &in); err != nil {
		return "", err
	}
	id, err := m.r.RecordVisit(context.Background(), in)
	return id, wrap(err)
}

// AmendVisit corrects a visit (an sdk.Correction as JSON), with a reason;
// the original record stays.
func (m *Replica) AmendVisit(visitID, reason, correctionJSON string) (string, error) {
	var c sdk.Correction
	if err := fromJSON(correctionJSON, &c); err != nil {
		return "", err
	}
	id, err := m.r.AmendVisit(context.Background(), visitID, reason, c)
	return id, wrap(err)
}

// VoidVisit voids a visit recorded by mistake, with a reason.
func (m *Replica) VoidVisit(visitID, reason string) (string, error) {
	id, err := m.r.VoidVisit(context.Background(), visitID, reason)
	return id, wrap(err)
}

// UpdateItem moves a tracked item forward: kind is the API's amendment
// kind (assign, resolve, close); deadlineUnixMillis 0 for none.
func (m *Replica) UpdateItem(visitID string, finding int32, kind int32, note, unit string, deadlineUnixMillis int64) (string, error) {
	var deadline time.Time
	if deadlineUnixMillis != 0 {
		deadline = time.UnixMilli(deadlineUnixMillis)
	}
	if finding < 0 {
		return "", &Error{Code: CodeInvalid, err: errors.New("a finding's number is not negative")}
	}
	id, err := m.r.UpdateItem(context.Background(), visitID, uint32(finding), syncengine.AmendmentKind(kind), note, unit, deadline)
	return id, wrap(err)
}

// AssignItem assigns an item to a lead unit with a deadline, and to the
// co-units (配合单位) that help it: coUnitsJSON is a JSON list of names
// (empty or "[]" for none).
func (m *Replica) AssignItem(visitID string, finding int32, note, unit string, deadlineUnixMillis int64, coUnitsJSON string) (string, error) {
	var coUnits []string
	if coUnitsJSON != "" {
		if err := json.Unmarshal([]byte(coUnitsJSON), &coUnits); err != nil {
			return "", &Error{Code: CodeInvalid, err: fmt.Errorf("co-units are a JSON list of names: %w", err)}
		}
	}
	if finding < 0 {
		return "", &Error{Code: CodeInvalid, err: errors.New("a finding's number is not negative")}
	}
	id, err := m.r.UpdateItem(context.Background(), visitID, uint32(finding), syncengine.AmendItemAssign, note, unit,
		time.UnixMilli(deadlineUnixMillis), coUnits...)
	return id, wrap(err)
}

// Grids are the worker's grids, as JSON.
func (m *Replica) Grids() (string, error) { return query(m.r.Grids(context.Background())) }

// Households are the households of the worker's grids, as JSON.
func (m *Replica) Households() (string, error) { return query(m.r.Households(context.Background())) }

// CategoryMembers are the households of a must-visit category, as JSON.
func (m *Replica) CategoryMembers(category string) (string, error) {
	return query(m.r.CategoryMembers(context.Background(), category))
}

// Household is one household whole (ledger, persons, categories, visits,
// amendments), as JSON.
func (m *Replica) Household(id string) (string, error) {
	return query(m.r.Household(context.Background(), id))
}

// Due is the worker's due list now for a campaign ("" for none), as JSON.
func (m *Replica) Due(campaignID string) (string, error) {
	return query(m.r.Due(context.Background(), campaignID, time.Now()))
}

// Progress is the worker's progress in a campaign now, as JSON.
func (m *Replica) Progress(campaignID string) (string, error) {
	p, c, err := m.r.Progress(context.Background(), campaignID, time.Now())
	return query(struct {
		Progress any
		Campaign *syncengine.Campaign
	}{p, c}, err)
}

// Items are the tracked items of the worker's households, as JSON.
func (m *Replica) Items() (string, error) {
	return query(m.r.Items(context.Background(), time.Now()))
}

// Categories are the must-visit categories, as JSON.
func (m *Replica) Categories() (string, error) { return query(m.r.Categories(context.Background())) }

// Campaigns are the campaigns of the worker's grids, as JSON.
func (m *Replica) Campaigns() (string, error) { return query(m.r.Campaigns(context.Background())) }

// Pending counts the changes not yet sent.
func (m *Replica) Pending() (int64, error) {
	n, err := m.r.Pending(context.Background())
	return int64(n), wrap(err)
}

// AttachFile keeps a file (a photo, a scan) with one of the worker's own
// visits, offline, copying it from path into the replica's folder; syncs
// upload it after the visit. It returns the file's description (an
// sdk.Attachment) as JSON.
func (m *Replica) AttachFile(visitID, name, mediaType, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", &Error{Code: CodeInvalid, err: fmt.Errorf("attach a file: %w", err)}
	}
	defer f.Close()
	return query(m.r.AttachFile(context.Background(), visitID, sdk.AttachmentInput{Name: name, MediaType: mediaType, Content: f}))
}

// Attachments lists the files of a visit on this phone (sdk.Attachment
// values as JSON; Path is where each one is).
func (m *Replica) Attachments(visitID string) (string, error) {
	return query(m.r.Attachments(context.Background(), visitID))
}

// FetchAttachments downloads the files of a visit the phone does not hold
// (another worker's visit), online, and lists them as Attachments does.
func (m *Replica) FetchAttachments(visitID string) (string, error) {
	return query(m.r.FetchAttachments(context.Background(), visitID))
}

func query[T any](v T, err error) (string, error) {
	if err != nil {
		return "", wrap(err)
	}
	return toJSON(v)
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", &Error{Code: CodeInternal, err: fmt.Errorf("encode the answer: %w", err)}
	}
	return string(b), nil
}

func fromJSON(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return &Error{Code: CodeInvalid, err: fmt.Errorf("read the JSON given: %w", err)}
	}
	return nil
}

func fieldsOf(s string) (map[string]string, error) {
	var fields map[string]string
	if err := fromJSON(s, &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// Package authz owns authorisation: Decide says whether a principal may
// take an action on a resource, and nothing else in the server decides it.
// The API checks each call's action on entry (before the call's body is
// read); the service checks it again on the resource the call names, read
// from storage, for every backend and every front end (API or console).
//
// Which rows a worker's device may read and write (its grids, and the
// grace after a household leaves them) is not decided here: that is the
// sync rules' scope (server/service).
package authz

import (
	"fmt"
	"slices"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// Action is what a principal asks to do.
type Action int

const (
	// Sync: push, pull and bootstrap, by a worker's device.
	Sync Action = iota + 1
	// ReadOrg: see org nodes, workers, devices and categories.
	ReadOrg
	// ReadCampaign: see a campaign, of the subtree or of a node above it.
	ReadCampaign
	// ReadReport: reports, drill-downs, exports and the audit log.
	ReadReport
	// ManageOrg: create nodes and workers, give grids, issue enrolment
	// codes, move and import households.
	ManageOrg
	// ManageDevices: revoke a device.
	ManageDevices
	// AddAdmin: create an admin or a leader over a node.
	AddAdmin
	// DefineCategory: define the must-visit categories (the whole
	// installation's).
	DefineCategory
	// ManageCampaign: create and change campaigns.
	ManageCampaign
	// UpdateItem: assign, resolve or close off a tracked item, or report
	// that none was found (a zero report, 零报告).
	UpdateItem
	// Erase: erase a household's or a person's personal data.
	Erase
	// OwnSession: read who one is, or end one's own console session (a
	// leader too: it changes nothing but the session).
	OwnSession
	// SetPolicy: set the installation's lost-phone policy (acted on the
	// installation: its installation-wide admins only).
	SetPolicy
	// ReadAttachment: list and download visits' files, by a worker's
	// device (which visits: the sync rules' scope, in server/service) or
	// an admin (of its subtree).
	ReadAttachment
)

var names = map[Action]string{
	Sync: "sync", ReadOrg: "read the org tree", ReadCampaign: "read campaigns", ReadReport: "read reports",
	ManageOrg: "manage the org tree", ManageDevices: "manage devices", AddAdmin: "add admins",
	DefineCategory: "define categories", ManageCampaign: "manage campaigns", UpdateItem: "update items", Erase: "erase personal data",
	OwnSession: "read or end one's own session", SetPolicy: "set the lost-phone policy",
	ReadAttachment: "read visits' files",
}

func (a Action) String() string {
	if n, ok := names[a]; ok {
		return n
	}
	return fmt.Sprintf("action %d", int(a))
}

// Actions lists every action, for tests that walk them all.
func Actions() []Action {
	out := make([]Action, 0, len(names))
	for a := range names {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// writes are the actions that change something: a leader (a read-only
// admin) may take none of them.
var writes = map[Action]bool{
	ManageOrg: true, ManageDevices: true, AddAdmin: true, DefineCategory: true,
	ManageCampaign: true, UpdateItem: true, Erase: true, SetPolicy: true,
}

// Resource is the part of the org tree an action touches.
type Resource struct {
	// Path is the node acted on and the nodes above it, the node first.
	// Empty means the installation as a whole (a new district, another
	// installation-wide admin, the categories); nil with Any set means
	// the call has not named its node yet (see Any).
	Path []string
	// Any asks whether p may take the action anywhere at all: the check
	// on entry, before the call's resource is known.
	Any bool
}

// Anywhere is the resource of the check on entry.
var Anywhere = Resource{Any: true}

// Node is the resource of one node, given its path (the node first).
func Node(path []string) Resource { return Resource{Path: path} }

// Installation is the resource of the installation as a whole.
var Installation = Resource{}

// Errors say why, each wrapping syncengine.ErrOutOfScope (or
// ErrUnauthenticated for no principal).
var (
	errWorkersOnly = fmt.Errorf("%w: sync is for workers' devices", syncengine.ErrOutOfScope)
	errAdminsOnly  = fmt.Errorf("%w: admins only", syncengine.ErrOutOfScope)
	// ErrLeaderWrite refuses a write to a leader.
	ErrLeaderWrite = fmt.Errorf("%w: a leader's token may only read", syncengine.ErrOutOfScope)
)

// Decide returns nil if p may take action a on r, else an error wrapping
// syncengine.ErrOutOfScope that says why (or ErrUnauthenticated without
// a principal).
//
// The rules:
//   - Sync is for workers' devices; so is ReadAttachment, which admins
//     take too; every other action is for admins.
//   - A leader (a read-only admin) only reads.
//   - An admin acts in the subtree of their node; an installation-wide
//     admin (node "") everywhere. Campaigns of the nodes above an admin's
//     node apply to it, and it reads them.
//   - Only an installation-wide admin acts on the installation as a whole
//     (creates districts and other installation-wide admins); categories
//     are defined by installation-wide and district admins.
func Decide(p store.Principal, a Action, r Resource) error {
	switch {
	case p.Kind == 0:
		return fmt.Errorf("%w: no caller", syncengine.ErrUnauthenticated)
	case a == Sync:
		if p.Kind != store.KindWorker {
			return errWorkersOnly
		}
		return nil
	case a == ReadAttachment && p.Kind == store.KindWorker:
		return nil
	case p.Kind != store.KindAdmin:
		return errAdminsOnly
	case p.ReadOnly && writes[a]:
		return ErrLeaderWrite
	case r.Any || p.Node == "":
		return nil
	}
	if a == DefineCategory {
		// A district is a root: its path is itself alone.
		if len(p.Path) == 1 {
			return nil
		}
		return fmt.Errorf("%w: categories are defined by district admins", syncengine.ErrOutOfScope)
	}
	if len(r.Path) == 0 {
		return fmt.Errorf("%w: only an installation-wide admin may %s for every tree", syncengine.ErrOutOfScope, a)
	}
	if slices.Contains(r.Path, p.Node) {
		return nil
	}
	if a == ReadCampaign && slices.Contains(p.Path, r.Path[0]) {
		return nil
	}
	return fmt.Errorf("%w: org node %s is outside your subtree", syncengine.ErrOutOfScope, r.Path[0])
}

// Home lists the actions p may take at its own node (the categories and
// the lost-phone policy, which are the installation's, at the
// installation): what a console offers it.
func Home(p store.Principal) []Action {
	home := Node(p.Path)
	if p.Node == "" {
		home = Installation
	}
	var out []Action
	for _, a := range Actions() {
		r := home
		if a == DefineCategory || a == SetPolicy {
			r = Installation
		}
		if Decide(p, a, r) == nil {
			out = append(out, a)
		}
	}
	return out
}

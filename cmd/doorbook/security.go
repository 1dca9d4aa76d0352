package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

type deviceJSON struct {
	ID            string `json:"id"`
	WorkerID      string `json:"worker_id"`
	Name          string `json:"name"`
	EnrolledAt    string `json:"enrolled_at"`
	RevokedAt     string `json:"revoked_at,omitempty"`
	RevokedReason string `json:"revoked_reason,omitempty"`
	LastSeenAt    string `json:"last_seen_at,omitempty"`
	LastSyncAt    string `json:"last_sync_at,omitempty"`
	AppVersion    string `json:"app_version,omitempty"`
	// What waited on the phone when its last sync began.
	OldestUnsyncedVisitAt string `json:"oldest_unsynced_visit_at,omitempty"`
	Outbox                uint32 `json:"outbox"`
}

func deviceOut(d *pb.Device) deviceJSON {
	out := deviceJSON{ID: d.GetId(), WorkerID: d.GetWorkerId(), Name: d.GetName(), EnrolledAt: d.GetEnrolledAt().AsTime().Format(time.RFC3339)}
	if d.GetRevokedAt() != nil {
		out.RevokedAt, out.RevokedReason = d.GetRevokedAt().AsTime().Format(time.RFC3339), d.GetRevokedReason()
	}
	if d.GetLastSeenAt() != nil {
		out.LastSeenAt = d.GetLastSeenAt().AsTime().Format(time.RFC3339)
	}
	if d.GetLastSyncAt() != nil {
		out.LastSyncAt, out.AppVersion, out.Outbox = d.GetLastSyncAt().AsTime().Format(time.RFC3339), d.GetAppVersion(), d.GetOutbox()
	}
	if d.GetOldestUnsyncedVisitAt() != nil {
		out.OldestUnsyncedVisitAt = d.GetOldestUnsyncedVisitAt().AsTime().Format(time.RFC3339)
	}
	return out
}

func (c *adminCmd) deviceList(args []string) error {
	fs := c.flags("device list")
	worker := fs.String("worker", "", "only this worker's devices (`id`)")
	silent := fs.Uint("silent", 0, "only the phones, not revoked, that have not finished a sync for `DAYS` days")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	res, err := c.client.ListDevices(c.ctx, &pb.ListDevicesRequest{WorkerId: *worker, SilentDays: uint32(min(*silent, 3650))})
	if err != nil {
		return err
	}
	out := []deviceJSON{}
	for _, d := range res.GetDevices() {
		out = append(out, deviceOut(d))
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tWORKER\tNAME\tENROLLED\tLAST SEEN\tLAST SYNC\tVERSION\tWAITING AT SYNC\tREVOKED")
		orElse := func(s, none string) string {
			if s == "" {
				return none
			}
			return s
		}
		for _, d := range out {
			revoked, waiting := "-", "-"
			if d.RevokedAt != "" {
				revoked = d.RevokedAt + " (" + d.RevokedReason + ")"
			}
			if d.LastSyncAt != "" {
				waiting = fmt.Sprintf("%d changes", d.Outbox)
				if d.OldestUnsyncedVisitAt != "" {
					waiting += ", a visit of " + d.OldestUnsyncedVisitAt
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.WorkerID, d.Name, d.EnrolledAt, orElse(d.LastSeenAt, "-"),
				orElse(d.LastSyncAt, "never"), orElse(d.AppVersion, "-"), waiting, revoked)
		}
	})
}

func (c *adminCmd) deviceRevoke(args []string) error {
	fs := c.flags("device revoke")
	id := fs.String("device", "", "device `id` (see device list)")
	reason := fs.String("reason", "", "why, as the phone's user will read it")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("device", *id); err != nil {
		return err
	}
	res, err := c.client.RevokeDevice(c.ctx, &pb.RevokeDeviceRequest{DeviceId: *id, Reason: *reason})
	if err != nil {
		return err
	}
	d := deviceOut(res.GetDevice())
	return c.out.print(d, func(w io.Writer) {
		fmt.Fprintf(w, "revoked device %s (%s): refused from its next request, which wipes its replica\n", d.ID, d.RevokedReason)
	})
}

func (c *adminCmd) adminCreate(args []string) error {
	fs := c.flags("admin create")
	name := fs.String("name", "", "the admin's `name`")
	node := fs.String("node", "", "root `id` of the new admin's subtree (default: every tree; only an installation-wide admin may)")
	leader := fs.Bool("leader", false, "a leader: reads reports, ledgers and lists, changes nothing")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("name", *name); err != nil {
		return err
	}
	role := pb.AdminRole_ADMIN_ROLE_ADMIN
	if *leader {
		role = pb.AdminRole_ADMIN_ROLE_LEADER
	}
	res, err := c.client.CreateAdmin(c.ctx, &pb.CreateAdminRequest{Name: *name, NodeId: *node, Role: role})
	if err != nil {
		return err
	}
	return c.out.print(map[string]string{"admin_id": res.GetAdminId(), "token": res.GetToken()}, func(w io.Writer) {
		fmt.Fprintf(w, "created %s %s; token (shown once): %s\n", map[bool]string{false: "admin", true: "leader"}[*leader], res.GetAdminId(), res.GetToken())
	})
}

// policyOut is the lost-phone policy as the CLI prints it.
type policyOut struct {
	LockAfterDays uint32 `json:"lock_after_days"`
	WipeAfterDays uint32 `json:"wipe_after_days"`
}

// devicePolicy shows the lost-phone policy, or sets it when a flag is
// given (the other keeps its value).
func (c *adminCmd) devicePolicy(args []string) error {
	fs := c.flags("device policy")
	lock := fs.Uint("lock-days", 0, "days without a successful sync after which a phone refuses reads until it syncs (0: never)")
	wipe := fs.Uint("wipe-days", 0, "days without a successful sync after which a phone wipes itself (0: never)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cur, err := c.client.GetDevicePolicy(c.ctx, &pb.GetDevicePolicyRequest{})
	if err != nil {
		return err
	}
	p := cur.GetPolicy()
	if set["lock-days"] || set["wipe-days"] {
		next := &pb.DevicePolicy{LockAfterDays: p.GetLockAfterDays(), WipeAfterDays: p.GetWipeAfterDays()}
		if set["lock-days"] {
			next.LockAfterDays = uint32(min(*lock, 1<<31))
		}
		if set["wipe-days"] {
			next.WipeAfterDays = uint32(min(*wipe, 1<<31))
		}
		res, err := c.client.SetDevicePolicy(c.ctx, &pb.SetDevicePolicyRequest{Policy: next})
		if err != nil {
			return err
		}
		p = res.GetPolicy()
	}
	out := policyOut{LockAfterDays: p.GetLockAfterDays(), WipeAfterDays: p.GetWipeAfterDays()}
	days := func(n uint32) string {
		if n == 0 {
			return "never"
		}
		return fmt.Sprintf("after %d days without a sync", n)
	}
	return c.out.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "lock\t%s\nwipe\t%s\n", days(out.LockAfterDays), days(out.WipeAfterDays))
	})
}

// itemPolicy shows, or with --escalation-days sets, after how many days
// an overdue tracked item goes up a level of the org tree.
func (c *adminCmd) itemPolicy(args []string) error {
	fs := c.flags("item policy")
	days := fs.Uint("escalation-days", 0, "days an overdue item stays with a level before it goes up (0: the default, 7)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "escalation-days" })
	var p *pb.ItemPolicy
	if set {
		res, err := c.client.SetItemPolicy(c.ctx, &pb.SetItemPolicyRequest{Policy: &pb.ItemPolicy{EscalationDays: uint32(min(*days, 1<<31))}})
		if err != nil {
			return err
		}
		p = res.GetPolicy()
	} else {
		res, err := c.client.GetItemPolicy(c.ctx, &pb.GetItemPolicyRequest{})
		if err != nil {
			return err
		}
		p = res.GetPolicy()
	}
	n := p.GetEscalationDays()
	if n == 0 {
		n = 7
	}
	return c.out.print(map[string]uint32{"escalation_days": n}, func(w io.Writer) {
		fmt.Fprintf(w, "an overdue item goes up a level every %d days (community, street, district)\n", n)
	})
}

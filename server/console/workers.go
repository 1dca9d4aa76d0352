package console

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/words"
)

type deviceView struct {
	ID, Name, Enrolled, LastSync, LastSeen, Version, Waiting, Revoked, Reason string
	// Silent: not revoked, and no sync for silentDays.
	Silent bool
}

// silentDays is when the workers page marks a phone as silent, and what
// its filter lists (?silent=1).
const silentDays = 7

type workerView struct {
	ID, Name, Role string
	Grids          []string
	Devices        []deviceView
}

// workers lists the workers of the admin's subtree with their grids and
// devices: when each last synced, and a form to revoke one with a reason
// and to give a worker an enrolment code.
func (c *Console) workers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ws, err := c.api.admin.ListWorkers(ctx, &pb.ListWorkersRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	ds, err := c.api.admin.ListDevices(ctx, &pb.ListDevicesRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	silentOnly := r.URL.Query().Get("silent") != ""
	silent, err := c.api.admin.ListDevices(ctx, &pb.ListDevicesRequest{SilentDays: silentDays})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	isSilent := map[string]bool{}
	for _, d := range silent.GetDevices() {
		isSilent[d.GetId()] = true
	}
	nodes, err := c.api.admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	zh := lang(r) == "zh"
	L := labels[lang(r)]
	names := map[string]string{}
	for _, n := range nodes.GetNodes() {
		names[n.GetId()] = n.GetName()
	}
	devices := map[string][]deviceView{}
	for _, d := range ds.GetDevices() {
		if silentOnly && !isSilent[d.GetId()] {
			continue
		}
		v := deviceView{ID: d.GetId(), Name: d.GetName(), Enrolled: minute(d.GetEnrolledAt().AsTime()),
			LastSync: L["never"], LastSeen: L["never"], Version: d.GetAppVersion(), Silent: isSilent[d.GetId()]}
		if d.GetLastSeenAt() != nil {
			v.LastSeen = minute(d.GetLastSeenAt().AsTime())
		}
		if d.GetLastSyncAt() != nil {
			v.LastSync = minute(d.GetLastSyncAt().AsTime())
			if n := d.GetOutbox(); n > 0 {
				v.Waiting = strings.NewReplacer("{n}", strconv.Itoa(int(n))).Replace(L["waiting"])
				if o := d.GetOldestUnsyncedVisitAt(); o != nil {
					v.Waiting += strings.NewReplacer("{at}", minute(o.AsTime())).Replace(L["waiting_since"])
				}
			}
		}
		if d.GetRevokedAt() != nil {
			v.Revoked, v.Reason = minute(d.GetRevokedAt().AsTime()), d.GetRevokedReason()
		}
		devices[d.GetWorkerId()] = append(devices[d.GetWorkerId()], v)
	}
	var out []workerView
	for _, wk := range ws.GetWorkers() {
		if silentOnly && len(devices[wk.GetId()]) == 0 {
			continue
		}
		v := workerView{ID: wk.GetId(), Name: wk.GetName(), Role: words.Of(words.Role, int32(wk.GetRole()), zh), Devices: devices[wk.GetId()]}
		for _, g := range wk.GetGridIds() {
			v.Grids = append(v.Grids, names[g])
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b workerView) int { return strings.Compare(a.Name, b.Name) })
	c.render(w, r, http.StatusOK, "workers", map[string]any{"Workers": out, "SilentOnly": silentOnly,
		"SilentCount": len(silent.GetDevices()), "SilentDays": silentDays})
}

// enrolTTL is how long a code made in the console stays valid: long
// enough to hand the phone over, short enough not to lie about.
const enrolTTL = 72 * time.Hour

// enrolCode gives a worker a one-time enrolment code and shows it as text
// and as a QR code a phone scans: a doorbook:// link with the server's
// address and the code. It is shown once and never stored by the console.
func (c *Console) enrolCode(w http.ResponseWriter, r *http.Request) {
	res, err := c.api.admin.CreateEnrollmentCode(r.Context(), &pb.CreateEnrollmentCodeRequest{
		WorkerId: r.PostForm.Get("worker"), TtlSeconds: uint32(enrolTTL / time.Second)})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	link := EnrolLink(scheme+"://"+r.Host, res.GetCode())
	png, err := qrcode.Encode(link, qrcode.Medium, 320)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "server")
		return
	}
	c.render(w, r, http.StatusOK, "code", map[string]any{
		"Code": res.GetCode(), "Link": link, "Worker": r.PostForm.Get("name"),
		"Expires": minute(time.Unix(int64(res.GetExpiresAtUnix()), 0)),
		// A data: URL the page's policy allows for images, and only them.
		"QR": template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
	})
}

// EnrolLink is what an enrolment QR code holds: the server a phone enrols
// with and the code, which an app reads to enrol without typing either.
func EnrolLink(server, code string) string {
	return "doorbook://enroll?" + url.Values{"server": {server}, "code": {code}}.Encode()
}

// revokeDevice revokes a device with the reason given, then returns to
// the workers' page.
func (c *Console) revokeDevice(w http.ResponseWriter, r *http.Request) {
	_, err := c.api.admin.RevokeDevice(r.Context(), &pb.RevokeDeviceRequest{DeviceId: r.PostForm.Get("device"),
		Reason: strings.TrimSpace(r.PostForm.Get("reason"))})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/workers", http.StatusSeeOther)
}

package e2e

import (
	"bytes"
	"context"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/xuri/excelize/v2"
)

var screenshots = flag.String("e2e.screenshots", "", "write screenshots of the console's pages (Chinese, 1366×768) to this `directory`")

// chromium finds Debian's headless Chromium, or skips the test saying how
// to install it (CI installs it and sets DOORBOOK_BROWSER_REQUIRED, so
// there the tests never skip).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("DOORBOOK_BROWSER_REQUIRED") == "1" {
		t.Fatal("Chromium is required here (DOORBOOK_BROWSER_REQUIRED=1) but not installed")
	}
	t.Skip("headless Chromium is not installed: apt-get install chromium (the browser tests then run)")
	return ""
}

// newBrowser starts a headless Chromium at 1366×768 in Chinese, for one
// test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.WindowSize(1366, 768),
		chromedp.Flag("lang", "zh-CN"),
		// Root in a container has no user namespace for Chromium's sandbox.
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
	})
	return ctx
}

// shoot saves a screenshot of the page as name.png when -e2e.screenshots
// is given.
func shoot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if *screenshots == "" {
			return nil
		}
		png, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*screenshots, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644)
	})
}

// into stores the value of action a in v: a step among others.
func into[T any](v *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var err error
		*v, err = a(ctx, t)
		return err
	})
}

// TestBrowserConsole drives the console in headless Chromium as an office
// clerk would: sign in, read the dashboard, follow the coverage to the
// households not visited and one of them to its page, follow a community
// of the ranking to its own figures, switch to English and back, assign,
// resolve and close off a tracked item, sign out; the session's cookie
// then opens nothing.
func TestBrowserConsole(t *testing.T) {
	t.Parallel()
	ctx := newBrowser(t)
	e := newConsoleEnv(t)
	var coverage, title, english, location, households, ledger, items, assigned, closed, code string
	var qrPNG []byte
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("signin")),
		shoot("signin"),
		chromedp.SendKeys(chromedp.ID("name"), streetAdmin),
		chromedp.SendKeys(chromedp.ID("password"), streetAdminPass),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("coverage")),
		into(&coverage, chromedp.Text(chromedp.ID("coverage"))),
		shoot("dashboard"),
		// The coverage figure opens the households not visited; one of
		// them opens whole.
		chromedp.Click(chromedp.ID("coverage")),
		chromedp.WaitVisible(chromedp.ID("households")),
		into(&households, chromedp.Text(chromedp.ID("count"))),
		shoot("households"),
		chromedp.Click(chromedp.CSS("#households a")),
		chromedp.WaitVisible(chromedp.ID("ledger")),
		into(&ledger, chromedp.Text(chromedp.ID("ledger"))),
		shoot("household"),
		chromedp.Navigate(e.URL+"/console/household/"+e.households[0]),
		chromedp.WaitVisible(chromedp.ID("items")),
		into(&items, chromedp.Text(chromedp.ID("items"))),
		shoot("household-items"),
		chromedp.Navigate(e.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("ranking")),
		chromedp.Click(chromedp.CSS("#ranking a")),
		chromedp.WaitVisible(chromedp.ID("title")),
		into(&title, chromedp.Text(chromedp.ID("title"))),
		shoot("community"),
		chromedp.Click(chromedp.ID("switch-lang")),
		chromedp.WaitVisible(chromedp.ID("figures")),
		into(&english, chromedp.Text(chromedp.ID("figures"))),
		chromedp.Click(chromedp.ID("switch-lang")),
		chromedp.WaitVisible(chromedp.ID("figures")),
		// The register: assign the hazard to a unit by a date, resolve it,
		// close it off.
		chromedp.Click(chromedp.ID("nav-items")),
		chromedp.WaitVisible(chromedp.CSS("form.assign .unit")),
		shoot("items"),
		chromedp.SendKeys(chromedp.CSS("form.assign .unit"), "城管科"),
		chromedp.SetValue(chromedp.CSS("form.assign .deadline"), "2030-01-31"),
		chromedp.Click(chromedp.CSS(".do-assign")),
		chromedp.WaitVisible(chromedp.CSS(".do-resolve")),
		into(&assigned, chromedp.Text(chromedp.CSS(".item-state"))),
		chromedp.SendKeys(chromedp.CSS("input[name=note]"), "已清理"),
		chromedp.Click(chromedp.CSS(".do-resolve")),
		// Resolved, it leaves the open items: the resolved ones show it.
		chromedp.WaitNotPresent(chromedp.CSS(".item-form")),
		chromedp.Navigate(e.URL+"/console/items?state=resolved"),
		chromedp.WaitVisible(chromedp.CSS(".do-close")),
		chromedp.Click(chromedp.CSS(".do-close")),
		// Closed off, it leaves the resolved ones too.
		chromedp.WaitNotPresent(chromedp.CSS(".do-close")),
		chromedp.Navigate(e.URL+"/console/items?state=closed"),
		chromedp.WaitVisible(chromedp.CSS(".item-state")),
		into(&closed, chromedp.Text(chromedp.CSS(".item-state"))),
		// A phone's enrolment code, as the QR code the screen shows.
		chromedp.Click(chromedp.ID("nav-workers")),
		chromedp.WaitVisible(chromedp.CSS(".do-code")),
		shoot("workers"),
		chromedp.Click(chromedp.CSS(".do-code")),
		chromedp.WaitVisible(chromedp.ID("qr")),
		// Visible is not yet painted: a data URI decodes on its own time,
		// and a screenshot taken before shows an empty box.
		chromedp.Poll[chromedp.Void](`(() => { const i = document.getElementById("qr"); return i.complete && i.naturalWidth > 0 })()`),
		shoot("enrolment-code"),
		into(&qrPNG, chromedp.Screenshot(chromedp.ID("qr"))),
		into(&code, chromedp.Text(chromedp.ID("code"))),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin")),
		into(&location, chromedp.Location()),
	)
	if err != nil {
		t.Fatal(err)
	}
	if coverage != "50.0%" {
		t.Errorf("coverage on the dashboard: %q, want 50.0%%", coverage)
	}
	if !strings.Contains(households, "/ 2 户") {
		t.Errorf("the households behind the coverage: %q, want 2", households)
	}
	if !strings.Contains(ledger, "幸福路") {
		t.Errorf("the household's ledger: %q", ledger)
	}
	if !strings.Contains(items, "治安隐患") || !strings.Contains(items, "登记") {
		t.Errorf("the household's items: %q", items)
	}
	if assigned != "挂牌督办" || closed != "已销号" {
		t.Errorf("the item after assigning: %q, after closing: %q; want 挂牌督办, 已销号", assigned, closed)
	}
	if text := decodePNG(t, qrPNG); !strings.Contains(text, "code="+code) || !strings.HasPrefix(text, "doorbook://enroll?") {
		t.Errorf("the QR code on the screen reads %q; want the enrolment link with code %s", text, code)
	}
	if !strings.HasPrefix(title, "Community") {
		t.Errorf("the community's page is titled %q", title)
	}
	if !strings.Contains(english, "Coverage") {
		t.Errorf("the figures in English: %q", english)
	}
	if !strings.HasSuffix(location, "/console/signin") {
		t.Errorf("after signing out the browser is at %s", location)
	}
	// Back to the dashboard: the browser has no session any more.
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("signin")),
	)
	if err != nil {
		t.Errorf("the dashboard after signing out did not ask to sign in: %v", err)
	}
}

// decodePNG reads the QR code in a PNG image.
func decodePNG(t *testing.T, b []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// The screenshot is the code alone, as its image was drawn: read as
	// such, not searched for in a scene, where the finder's guess at the
	// code's size fails on about one code in 400 (a flake of CI's).
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		if res, err = qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}); err != nil {
			t.Fatalf("the QR code does not decode: %v", err)
		}
	}
	return res.GetText()
}

// TestBrowserExportConfigAndRoles: the street's admin downloads the ledger
// from the dashboard and the workbook opens in excelize as an office
// ledger; sets up a campaign with a quota on the configuration page; a
// form whose CSRF token was taken out of the page is refused. The street's
// leader is offered no form that changes anything, and the other street's
// admin sees nothing of this street.
func TestBrowserExportConfigAndRoles(t *testing.T) {
	t.Parallel()
	ctx := newBrowser(t)
	e := newConsoleEnv(t)
	dir := t.TempDir()
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	var campaigns, csrfPage, leaderForms, leaderItems, otherDash, otherHousehold string
	err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true)})
			return err
		}),
		chromedp.Navigate(e.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.SendKeys(chromedp.ID("name"), streetAdmin),
		chromedp.SendKeys(chromedp.ID("password"), streetAdminPass),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("download")),
		chromedp.Click(chromedp.ID("download")),
	)
	if err != nil {
		t.Fatal(err)
	}
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("the download was cancelled")
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			file = filepath.Join(dir, ev.GUID)
			break
		}
	}
	x, err := excelize.OpenFile(file)
	if err != nil {
		t.Fatalf("the downloaded ledger does not open: %v", err)
	}
	defer x.Close()
	sheet := x.GetSheetName(0)
	top, _ := x.GetCellValue(sheet, "A1")
	header, _ := x.GetCellValue(sheet, "A2")
	panes, _ := x.GetPanes(sheet)
	if !strings.Contains(top, "平安大走访") || !strings.Contains(top, "截至") || header == "" || !panes.Freeze {
		t.Errorf("the downloaded ledger: title %q, first header %q, frozen %v", top, header, panes.Freeze)
	}
	rows, _ := x.GetRows(sheet)
	if len(rows) != 2+len(e.households) {
		t.Errorf("the downloaded ledger has %d rows, want a title, a header and %d households", len(rows), len(e.households))
	}

	err = chromedp.Do(ctx,
		// A campaign set up on the configuration page.
		chromedp.Click(chromedp.ID("nav-config")),
		chromedp.WaitVisible(chromedp.ID("new-campaign")),
		shoot("config"),
		chromedp.Click(chromedp.ID("new-campaign")),
		chromedp.WaitVisible(chromedp.ID("campaign-form")),
		chromedp.SendKeys(chromedp.ID("campaign-name"), "冬季走访"),
		chromedp.SetValue(chromedp.ID("campaign-from"), "2026-12-01"),
		chromedp.SetValue(chromedp.ID("campaign-until"), "2027-02-28"),
		chromedp.SendKeys(chromedp.CSS(".quota-1"), "80"),
		shoot("campaign"),
		chromedp.Click(chromedp.ID("save-campaign")),
		chromedp.WaitVisible(chromedp.ID("campaign-list")),
		into(&campaigns, chromedp.Text(chromedp.ID("campaign-list"))),
		// The register's assign form, its CSRF token taken out.
		chromedp.Navigate(e.URL+"/console/items?state=open"),
		chromedp.WaitVisible(chromedp.CSS("form.assign .unit")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("form.assign input[name=csrf]").remove()`),
		chromedp.SendKeys(chromedp.CSS("form.assign .unit"), "城管科"),
		chromedp.SetValue(chromedp.CSS("form.assign .deadline"), "2030-01-31"),
		chromedp.Click(chromedp.CSS(".do-assign")),
		chromedp.WaitVisible(chromedp.ID("problem")),
		into(&csrfPage, chromedp.Text(chromedp.ID("problem"))),
		chromedp.Navigate(e.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("signout")),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin")),
		// The leader: every page read, no form but signing out.
		chromedp.SendKeys(chromedp.ID("name"), streetLeader),
		chromedp.SendKeys(chromedp.ID("password"), leaderPass),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("coverage")),
		chromedp.Navigate(e.URL+"/console/items?state=open"),
		chromedp.WaitVisible(chromedp.CSS(".item-state")),
		into(&leaderItems, chromedp.Text(chromedp.ID("items"))),
		shoot("items-leader"),
		chromedp.Navigate(e.URL+"/console/config"),
		chromedp.WaitVisible(chromedp.ID("campaign-list")),
		into(&leaderForms, chromedp.Evaluate[string](`[...document.querySelectorAll("form[method=post]")].map(f => f.getAttribute("action")).join(" ")`)),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin")),
		// The other street's admin.
		chromedp.SendKeys(chromedp.ID("name"), otherAdmin),
		chromedp.SendKeys(chromedp.ID("password"), otherAdminPass),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signout")),
		into(&otherDash, chromedp.Text(chromedp.CSS("main"))),
		chromedp.Navigate(e.URL+"/console/household/"+e.households[0]),
		chromedp.WaitVisible(chromedp.ID("problem")),
		into(&otherHousehold, chromedp.Text(chromedp.CSS("main"))),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(campaigns, "冬季走访") || !strings.Contains(campaigns, "网格员 80") {
		t.Errorf("the campaigns after saving one: %q", campaigns)
	}
	if !strings.Contains(csrfPage, "表单已过期") {
		t.Errorf("a form without its CSRF token: %q", csrfPage)
	}
	if !strings.Contains(leaderItems, "楼道堆物") {
		t.Errorf("the leader's register: %q", leaderItems)
	}
	if leaderForms != "/console/signout" {
		t.Errorf("the leader's configuration page offers forms to %q, want only signing out", leaderForms)
	}
	for _, secret := range []string{"平安大走访", "幸福路", "户主"} {
		if strings.Contains(otherDash, secret) || strings.Contains(otherHousehold, secret) {
			t.Errorf("the other street's admin sees %q", secret)
		}
	}
	if !strings.Contains(otherHousehold, "无权") {
		t.Errorf("the other street's admin opening this street's household: %q", otherHousehold)
	}
}

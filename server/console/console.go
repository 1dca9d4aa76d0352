// Package console is the web console of the street and district offices:
// server-rendered pages, in Chinese by default with an English switch,
// served on the API's own port under /console/.
//
// The console holds no rules and no data of its own. Each page calls the
// API (server.Server's handler, in process: see loopback) with the
// signed-in admin's session token, so it is authenticated, authorised and
// audited exactly as the same call from the command line would be; a
// session is a token that expires (SessionService). What the console adds
// is the browser's side: the session cookie, CSRF tokens on every form,
// and pages.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Cookie names. The session cookie holds the session's bearer token; the
// sign-in cookie a random value the sign-in form must echo (there is no
// session yet to derive a CSRF token from); the language cookie "en" or
// nothing.
const (
	sessionCookie = "doorbook_session"
	signInCookie  = "doorbook_signin"
	langCookie    = "doorbook_lang"
)

// maxForm bounds a form's body: the console's forms are a few fields.
const maxForm = 64 << 10

// uploads are the forms that carry a file (multipart/form-data), with the
// bound of each one's body; every other form is a few fields.
var uploads = map[string]int64{"/console/import": maxImportForm}

// Mount serves the console under /console/ and the API everywhere else,
// on one handler: what `doorbook serve` listens with.
func Mount(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/console/", New(api))
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusSeeOther))
	mux.Handle("/", api)
	return mux
}

// Console is the console's handler.
type Console struct {
	mux   *http.ServeMux
	pages map[string]*template.Template
	api   apiClients
}

type apiClients struct {
	session doorbookv1connect.SessionServiceClient
	admin   doorbookv1connect.AdminServiceClient
	report  doorbookv1connect.ReportServiceClient
	ledger  doorbookv1connect.LedgerServiceClient
}

type tokenKey struct{}

// New returns the console over the API's handler.
func New(api http.Handler) *Console {
	hc := &http.Client{Transport: loopback{api: api}}
	// The session's token, if any, goes with each call as its bearer.
	auth := connect.WithInterceptors(bearer.FromContext(func(ctx context.Context) string {
		t, _ := ctx.Value(tokenKey{}).(string)
		return t
	}))
	const base = "http://console.invalid"
	c := &Console{
		mux:   http.NewServeMux(),
		pages: parsePages(),
		api: apiClients{
			session: doorbookv1connect.NewSessionServiceClient(hc, base, auth),
			admin:   doorbookv1connect.NewAdminServiceClient(hc, base, auth),
			report:  doorbookv1connect.NewReportServiceClient(hc, base, auth),
			ledger:  doorbookv1connect.NewLedgerServiceClient(hc, base, auth),
		},
	}
	static, _ := fs.Sub(staticFiles, "static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /console/signin", c.signInPage)
	c.mux.HandleFunc("POST /console/signin", c.signIn)
	c.mux.HandleFunc("POST /console/signout", c.withSession(c.signOut))
	c.mux.HandleFunc("GET /console/{$}", c.withSession(c.dashboard))
	c.mux.HandleFunc("GET /console/households", c.withSession(c.households))
	c.mux.HandleFunc("GET /console/household/{id}", c.withSession(c.household))
	c.mux.HandleFunc("GET /console/items", c.withSession(c.items))
	c.mux.HandleFunc("GET /console/export", c.withSession(c.export))
	c.mux.HandleFunc("GET /console/workers", c.withSession(c.workers))
	c.mux.HandleFunc("GET /console/audit", c.withSession(c.audit))
	c.mux.HandleFunc("POST /console/workers/code", c.withSession(c.enrolCode))
	c.mux.HandleFunc("POST /console/workers/revoke", c.withSession(c.revokeDevice))
	c.mux.HandleFunc("POST /console/items/update", c.withSession(c.updateItem))
	c.mux.HandleFunc("GET /console/config", c.withSession(c.config))
	c.mux.HandleFunc("POST /console/config/node", c.withSession(c.createNode))
	c.mux.HandleFunc("POST /console/config/category", c.withSession(c.putCategory))
	c.mux.HandleFunc("POST /console/config/policy", c.withSession(c.setPolicy))
	c.mux.HandleFunc("POST /console/config/items", c.withSession(c.setItemPolicy))
	c.mux.HandleFunc("GET /console/campaign", c.withSession(c.campaign))
	c.mux.HandleFunc("POST /console/campaign", c.withSession(c.putCampaign))
	c.mux.HandleFunc("GET /console/weeks", c.withSession(c.weeks))
	c.mux.HandleFunc("GET /console/import", c.withSession(c.importPage))
	c.mux.HandleFunc("POST /console/import", c.withSession(c.importLedger))
	return c
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Pages of household data: never cached, never framed, no script or
	// style but the console's own.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if l := r.URL.Query().Get("lang"); l == "zh" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/console/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		// This request already speaks it, whatever its cookie says.
		r = r.WithContext(context.WithValue(r.Context(), langKey{}, l))
	}
	c.mux.ServeHTTP(w, r)
}

type langKey struct{}

// session is a signed-in request's: the token, the CSRF token its forms
// carry, who signed in and what the API lets them do at their node (by
// method name: forms are offered for these alone).
type session struct {
	token string
	csrf  string
	name  string
	// root: an installation-wide admin, over every tree.
	root bool
	may  map[string]bool
}

type sessionKey struct{}

// sessionOf is the session of a request withSession let through.
func sessionOf(r *http.Request) session {
	s, _ := r.Context().Value(sessionKey{}).(session)
	return s
}

// csrfOf derives a session's CSRF token from its (secret, HttpOnly)
// session token: another site's page can neither read it nor make it, and
// every server process derives the same one.
func csrfOf(token string) string {
	sum := sha256.Sum256([]byte("doorbook console csrf\x00" + token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// withSession runs h for a request with a session cookie, whose calls
// carry its token; without one, or with one the API no longer accepts, it
// sends the browser to sign in. A POST must carry the session's CSRF
// token. The page learns who signed in and what the API lets them do.
func (c *Console) withSession(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			c.toSignIn(w, r)
			return
		}
		s := session{token: ck.Value, csrf: csrfOf(ck.Value)}
		if r.Method == http.MethodPost {
			var err error
			if limit, ok := uploads[r.URL.Path]; ok {
				// A file: what does not fit in memory waits in a temporary
				// file, which net/http removes after the request.
				r.Body = http.MaxBytesReader(w, r.Body, limit)
				err = r.ParseMultipartForm(maxForm)
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, maxForm)
				err = r.ParseForm()
			}
			if err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
				c.fail(w, r, http.StatusForbidden, "csrf")
				return
			}
		}
		ctx := context.WithValue(withRemote(r.Context(), r.RemoteAddr), tokenKey{}, s.token)
		who, err := c.api.session.GetSession(ctx, &pb.GetSessionRequest{})
		if err != nil {
			c.apiError(w, r, err)
			return
		}
		s.name, s.root, s.may = who.GetAdminName(), who.GetNodeId() == "", map[string]bool{}
		for _, p := range who.GetProcedures() {
			s.may[path.Base(p)] = true
		}
		h(w, r.WithContext(context.WithValue(ctx, sessionKey{}, s)))
	}
}

// toSignIn sends the browser to the sign-in page, forgetting a session
// cookie the API no longer accepts.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/console/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

// apiError turns an API call's error into a page: an ended session back
// to signing in, anything else an error page saying what the API said.
func (c *Console) apiError(w http.ResponseWriter, r *http.Request, err error) {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated:
		c.toSignIn(w, r)
	case connect.CodePermissionDenied:
		c.fail(w, r, http.StatusForbidden, "denied")
	case connect.CodeNotFound, connect.CodeInvalidArgument:
		c.fail(w, r, http.StatusBadRequest, "bad request")
	default:
		c.fail(w, r, http.StatusInternalServerError, "server")
	}
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, problem string) {
	nonce := rand.Text()
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: nonce, Path: "/console/", MaxAge: 3600, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	c.render(w, r, status, "signin", map[string]any{"CSRF": nonce, "Problem": problem, "SignIn": true})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	ck, err := r.Cookie(signInCookie)
	if err != nil || r.ParseForm() != nil || ck.Value == "" ||
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(ck.Value)) != 1 {
		c.fail(w, r, http.StatusForbidden, "csrf")
		return
	}
	ctx := withRemote(r.Context(), r.RemoteAddr)
	res, err := c.api.session.SignIn(ctx, &pb.SignInRequest{Name: r.PostForm.Get("name"), Password: r.PostForm.Get("password")})
	switch {
	case err == nil:
	case connect.CodeOf(err) == connect.CodeUnauthenticated, connect.CodeOf(err) == connect.CodeInvalidArgument:
		c.renderSignIn(w, r, http.StatusUnauthorized, "bad sign-in")
		return
	case connect.CodeOf(err) == connect.CodeResourceExhausted:
		c.renderSignIn(w, r, http.StatusTooManyRequests, "throttled")
		return
	default:
		c.apiError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Path: "/console/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: res.GetToken(), Path: "/console/",
		Expires: res.GetExpiresAt().AsTime(), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if _, err := c.api.session.SignOut(r.Context(), &pb.SignOutRequest{}); err != nil && connect.CodeOf(err) != connect.CodeUnauthenticated {
		c.apiError(w, r, err)
		return
	}
	c.toSignIn(w, r)
}

// lang is the request's language: "en" if chosen, else "zh".
func lang(r *http.Request) string {
	if l, ok := r.Context().Value(langKey{}).(string); ok {
		return l
	}
	if ck, err := r.Cookie(langCookie); err == nil && ck.Value == "en" {
		return "en"
	}
	return "zh"
}

// fail renders an error page; what names the message in labels.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, what string) {
	c.render(w, r, status, "error", map[string]any{"Problem": what})
}

// render writes page with data, adding what every page has: the labels of
// the request's language and the link to switch it.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	l := lang(r)
	if s, ok := r.Context().Value(sessionKey{}).(session); ok {
		data["CSRF"], data["Me"], data["May"], data["Root"] = s.csrf, s.name, s.may, s.root
	}
	data["L"] = labels[l]
	data["Lang"] = l
	other := url.Values{}
	for k, v := range r.URL.Query() {
		if k != "lang" {
			other[k] = v
		}
	}
	if l == "zh" {
		other.Set("lang", "en")
	} else {
		other.Set("lang", "zh")
	}
	path := r.URL.Path
	if r.Method != http.MethodGet {
		path = "/console/"
	}
	data["SwitchLang"] = path + "?" + other.Encode()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[page].ExecuteTemplate(w, "layout", data); err != nil {
		// The status is written; what the page lacks shows.
		fmt.Fprintf(w, "<p>%s</p>", template.HTMLEscapeString(err.Error()))
	}
}

// parsePages parses each page with the layout.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"percent": func(n, d uint32) string {
			if d == 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
		},
		"inc":    func(i int) int { return i + 1 },
		"mul100": func(f float64) float64 { return 100 * f },
		"list":   func(v ...string) []string { return v },
		// drill links a figure to the households behind it.
		"drill": func(node, campaign, metric string) string {
			return "/console/households?" + url.Values{"node": {node}, "campaign": {campaign}, "metric": {metric}}.Encode()
		},
	}
	out := map[string]*template.Template{}
	for _, page := range []string{"signin", "dashboard", "households", "household", "items", "workers", "code", "audit", "config", "campaign", "import", "weeks", "error"} {
		t := template.Must(template.New(page).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+page+".html"))
		out[page] = t
	}
	return out
}

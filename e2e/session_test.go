package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

// TestSessions: an admin and a leader sign in with a password set by the
// operator; a session is authorised as the admin is (the leader's reads
// only), ends on sign-out and at its expiry, and failed sign-ins are
// throttled per name, the right password included.
func TestSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	nodes, err := e.Admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var street string
	for _, n := range nodes.GetNodes() {
		if n.GetLevel() == pb.OrgLevel_ORG_LEVEL_STREET {
			street = n.GetId()
		}
	}
	for _, a := range []struct {
		name string
		role pb.AdminRole
	}{{"王街道", pb.AdminRole_ADMIN_ROLE_ADMIN}, {"李领导", pb.AdminRole_ADMIN_ROLE_LEADER}, {"twin", pb.AdminRole_ADMIN_ROLE_ADMIN}, {"twin", pb.AdminRole_ADMIN_ROLE_ADMIN}} {
		if _, err := e.Admin.CreateAdmin(ctx, &pb.CreateAdminRequest{Name: a.name, NodeId: street, Role: a.role}); err != nil {
			t.Fatal(err)
		}
	}
	// The operator's passwords: too short, for nobody, and for a name two
	// admins share are refused.
	for _, c := range []struct{ name, password string }{{"王街道", "short"}, {"nobody", "long enough password"}, {"twin", "long enough password"}} {
		if err := e.Store.SetAdminPassword(ctx, c.name, c.password); err == nil {
			t.Errorf("SetAdminPassword(%q, %q) succeeded", c.name, c.password)
		}
	}
	const adminPass, leaderPass = "正确的马和电池订书钉", "leader's own password"
	if err := e.Store.SetAdminPassword(ctx, "王街道", adminPass); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.SetAdminPassword(ctx, "李领导", leaderPass); err != nil {
		t.Fatal(err)
	}
	sessions := doorbookv1connect.NewSessionServiceClient(http.DefaultClient, e.URL)
	admin := func(token string) doorbookv1connect.AdminServiceClient {
		return doorbookv1connect.NewAdminServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(token)))
	}
	signIn := func(name, password string) (*pb.SignInResponse, error) {
		res, err := sessions.SignIn(ctx, &pb.SignInRequest{Name: name, Password: password})
		return res, err
	}
	wantCode := func(what string, err error, want connect.Code) {
		t.Helper()
		if connect.CodeOf(err) != want {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}

	_, err = signIn("王街道", "wrong password")
	wantCode("a wrong password", err, connect.CodeUnauthenticated)
	_, err = signIn("nobody", adminPass)
	wantCode("an unknown name", err, connect.CodeUnauthenticated)

	s, err := signIn("王街道", adminPass)
	if err != nil {
		t.Fatal(err)
	}
	if s.GetNodeId() != street || s.GetReadOnly() || s.GetAdminName() != "王街道" {
		t.Errorf("signed in as %+v; want the street's admin", s)
	}
	if d := time.Until(s.GetExpiresAt().AsTime()); d < 11*time.Hour || d > 13*time.Hour {
		t.Errorf("the session expires in %v, want about 12h", d)
	}
	// Authorised as the admin: the street's subtree, and writes in it.
	got, err := admin(s.GetToken()).ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetNodes()) != len(nodes.GetNodes())-1 {
		t.Errorf("the street admin's session sees %d nodes, want the %d of its street", len(got.GetNodes()), len(nodes.GetNodes())-1)
	}
	if _, err := admin(s.GetToken()).CreateOrgNode(ctx, &pb.CreateOrgNodeRequest{ParentId: street, Level: pb.OrgLevel_ORG_LEVEL_COMMUNITY, Name: "新社区"}); err != nil {
		t.Errorf("the admin's session could not write in its street: %v", err)
	}
	// The session says whose it is.
	so := doorbookv1connect.NewSessionServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(s.GetToken())))
	who, err := so.GetSession(ctx, &pb.GetSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if who.GetAdminId() != s.GetAdminId() || who.GetAdminName() != "王街道" || who.GetNodeId() != street || who.GetReadOnly() {
		t.Errorf("the session says it is %+v; want the street's admin", who)
	}
	// Signing out ends the session at once; doing it again is refused.
	if _, err := so.SignOut(ctx, &pb.SignOutRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = admin(s.GetToken()).ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	wantCode("a call after signing out", err, connect.CodeUnauthenticated)
	_, err = so.SignOut(ctx, &pb.SignOutRequest{})
	wantCode("signing out twice", err, connect.CodeUnauthenticated)

	// A leader's session reads and writes nothing.
	l, err := signIn("李领导", leaderPass)
	if err != nil {
		t.Fatal(err)
	}
	if !l.GetReadOnly() {
		t.Errorf("the leader signed in as %+v, want read-only", l)
	}
	lso := doorbookv1connect.NewSessionServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(l.GetToken())))
	if who, err := lso.GetSession(ctx, &pb.GetSessionRequest{}); err != nil || !who.GetReadOnly() || who.GetAdminName() != "李领导" {
		t.Errorf("the leader's session says %+v (%v); want the leader, read-only", who, err)
	}
	if _, err := admin(l.GetToken()).ListWorkers(ctx, &pb.ListWorkersRequest{}); err != nil {
		t.Errorf("the leader's session could not read: %v", err)
	}
	_, err = admin(l.GetToken()).CreateOrgNode(ctx, &pb.CreateOrgNodeRequest{ParentId: street, Level: pb.OrgLevel_ORG_LEVEL_COMMUNITY, Name: "x"})
	wantCode("a leader's session writing", err, connect.CodePermissionDenied)

	// A session ends at its expiry.
	e.now.Add(12*time.Hour + time.Second)
	_, err = admin(l.GetToken()).ListWorkers(ctx, &pb.ListWorkersRequest{})
	wantCode("a call after the session expired", err, connect.CodeUnauthenticated)

	// Ten wrong passwords for a name lock it for a while, even against
	// the right one; another name is not affected.
	for range 10 {
		_, err := signIn("王街道", "a guess at the password")
		wantCode("a guess", err, connect.CodeUnauthenticated)
	}
	_, err = signIn("王街道", adminPass)
	wantCode("the right password after ten guesses", err, connect.CodeResourceExhausted)
	if _, err := signIn("李领导", leaderPass); err != nil {
		t.Errorf("another name after ten guesses at one: %v", err)
	}
	e.now.Add(16 * time.Minute)
	if _, err := signIn("王街道", adminPass); err != nil {
		t.Errorf("the right password once the window passed: %v", err)
	}
	if err := e.Store.SetAdminPassword(ctx, "王街道", "x"); !errors.Is(err, syncengine.ErrInvalid) {
		t.Errorf("a one-character password: %v, want ErrInvalid", err)
	}
}

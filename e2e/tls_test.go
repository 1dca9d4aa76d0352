package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server"
)

// testCA makes a CA and a certificate it signed for 127.0.0.1.
func testCA(t testing.TB) (ca *x509.Certificate, leaf tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Doorbook test district CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "doorbook server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLSServerIsVerified(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1)
	_, code := e.worker("Li", e.Grids[0])
	ca, cert := testCA(t)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.ServeTLS(sctx, l, server.New(e.Store).Handler(), cert) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("TLS server: %v", err)
		}
	})
	url := "https://" + l.Addr().String()

	// A phone that does not trust the district's CA refuses the server
	// (and so never sends it the code).
	untrusting, err := sdk.Open(ctx, filepath.Join(t.TempDir(), "untrusting.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	err = untrusting.Enroll(ctx, url, code, "phone")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("enrol against an unknown CA: %v, want x509.UnknownAuthorityError", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots}
	transport.ForceAttemptHTTP2 = true
	var proto string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		res, err := transport.RoundTrip(r)
		if err == nil {
			proto = res.Proto
		}
		return res, err
	})}
	phone, err := sdk.Open(ctx, filepath.Join(t.TempDir(), "phone.db"), sdk.WithHTTPClient(client))
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if err := phone.Enroll(ctx, url, code, "phone"); err != nil {
		t.Fatal(err)
	}
	h, err := phone.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "Zhao"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.RecordVisit(ctx, sdkVisit(h)); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, phone); rep.Pushed != 2 {
		t.Fatalf("pushed %d over TLS, want 2", rep.Pushed)
	}
	if proto != "HTTP/2.0" {
		t.Errorf("protocol over TLS: %q, want HTTP/2.0", proto)
	}
	res, err := e.Admin.ListDevices(ctx, &pb.ListDevicesRequest{})
	if err != nil || len(res.GetDevices()) != 1 {
		t.Fatalf("devices after a TLS enrolment: %v, %v", res, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

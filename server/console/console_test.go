package console

import (
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestLabels: both languages have every label, and every label a page
// names exists (html/template would print nothing for a missing one).
func TestLabels(t *testing.T) {
	for key := range labels["zh"] {
		if labels["en"][key] == "" {
			t.Errorf("label %q has no English", key)
		}
	}
	for key := range labels["en"] {
		if labels["zh"][key] == "" {
			t.Errorf("label %q has no Chinese", key)
		}
	}
	used := regexp.MustCompile(`\.L\.([a-z_]+)`)
	err := fs.WalkDir(templateFiles, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFiles, path)
		if err != nil {
			return err
		}
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if labels["zh"][m[1]] == "" {
				t.Errorf("%s names label %q, which does not exist", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The problems pages name by key.
	for _, p := range []string{"bad sign-in", "throttled", "csrf", "denied", "bad request", "server"} {
		if labels["zh"][p] == "" {
			t.Errorf("problem %q has no label", p)
		}
	}
}

// TestLocalPath: a form's return address stays in the console.
func TestLocalPath(t *testing.T) {
	for _, c := range []struct{ back, want string }{
		{"/console/items?state=open", "/console/items?state=open"},
		{"/console/household/x", "/console/household/x"},
		{"https://evil.example/console/", "/def"},
		{"//evil.example/console/", "/def"},
		{"/console//evil.example", "/def"},
		{`/console/\evil`, "/def"},
		{"/metrics", "/def"},
		{"", "/def"},
		{"javascript:alert(1)", "/def"},
	} {
		if got := localPath(c.back, "/def"); got != c.want {
			t.Errorf("localPath(%q) = %q, want %q", c.back, got, c.want)
		}
	}
}

// TestLoopbackSurvivesAPanic: a panic in the API's handler fails the call
// instead of the process, before or after the headers.
func TestLoopbackSurvivesAPanic(t *testing.T) {
	for _, after := range []bool{false, true} {
		api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if after {
				w.WriteHeader(http.StatusOK)
				w.Write([]byte("partial"))
			}
			panic("boom")
		})
		hc := &http.Client{Transport: loopback{api: api}}
		res, err := hc.Get("http://console.invalid/x")
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("a handler panicking (after its headers: %v): %v, want the call to fail", after, err)
		}
	}
}

package export

import (
	"math"
	"testing"
	"time"
)

func TestSafeTextNeutralisesFormulas(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"equals", `=HYPERLINK("http://evil","x")`, `'=HYPERLINK("http://evil","x")`},
		{"plus DDE", `+cmd|' /C calc'!A0`, `'+cmd|' /C calc'!A0`},
		{"minus", "-2+3", "'-2+3"},
		{"at", "@SUM(1)", "'@SUM(1)"},
		{"phone with a plus", "+8613800000000", "'+8613800000000"},
		{"negative number as text", "-5", "'-5"},
		{"lone trigger", "=", "'="},
		{"tab then equals", "\t=1", "' =1"},
		{"CR then equals", "\r=1", "'\n=1"},
		{"CR LF then equals", "\r\n=1", "'\n=1"},
		{"spaces then equals", "  =1", "'  =1"},
		{"newline then minus", "\n-1", "'\n-1"},
		{"ideographic space then plus", "\u3000+1", "'\u3000+1"},
		{"no-break space then at", "\u00a0@A1", "'\u00a0@A1"},
		{"control then equals", "\x00=1", "'=1"},
		{"DEL then plus", "\x7f+1", "'+1"},
		{"C1 then minus", "\u0085-1", "'-1"},
		{"bidi override then equals", "\u202e=1", "'=1"},
		{"bidi isolate then at", "\u2066@x\u2069", "'@x"},
		{"already quoted", "'=1", "'=1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := safeText(c.in); got != c.want {
				t.Errorf("safeText(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestSafeTextStripsControls(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"C0", "a\x00b\x07c\x1bd\x1f", "abcd"},
		{"terminal escape", "\x1b[31m红\x1b[0m", "[31m红[0m"},
		{"DEL and C1", "a\x7fb\u0080c\u009fd", "abcd"},
		{"tab becomes a space", "a\tb", "a b"},
		{"CR LF becomes LF", "第一行\r\n第二行", "第一行\n第二行"},
		{"lone CR becomes LF", "第一行\r第二行", "第一行\n第二行"},
		{"bidi override", "张伟\u202egpj.exe", "张伟gpj.exe"},
		{"all bidi controls", "\u202a\u202b\u202c\u202d\u202ea\u2066\u2067\u2068\u2069", "a"},
		{"noncharacters", "a\ufffe\uffffb", "ab"},
		{"invalid UTF-8", "a\xffb", "a\ufffdb"},
		{"only controls", "\x00\x01", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := safeText(c.in); got != c.want {
				t.Errorf("safeText(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestSafeTextKeepsOrdinaryText(t *testing.T) {
	for _, s := range []string{
		"",
		"张伟",
		"欧阳娜娜",
		"和平路1号3单元502室",
		"2024-05-01",
		"13800138000",
		"0371-12345678",
		"3",
		"66.7",
		"a=b",
		"5 - 3",
		"O'Brien",
		"'quoted",
		"张伟家走访\n第二次回访",
		"治安隐患: 楼道堆放杂物",
		"－", // full-width: written as "none" in forms, not a formula
		"＋86 138",
		"—",
		"_x0007_", // excelize's escape syntax, kept as text
		"表情 😀",
		" leading space",
		"ﬁ",      // compatibility ligature: not ours to normalise
		"\u200d", // zero-width joiner: part of emoji sequences
		"\u200f", // right-to-left mark: not an override
	} {
		if got := safeText(s); got != s {
			t.Errorf("safeText(%q) = %q, want it unchanged", s, got)
		}
	}
}

// Numbers are the server's own and stay numbers in both formats; only text
// is neutralised.
func TestNumbersStayNumbers(t *testing.T) {
	day := time.Date(2024, 5, 1, 9, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		v      any
		text   string
		number bool
	}{
		{-3, "-3", true},
		{int64(-7), "-7", true},
		{int32(-2), "-2", true},
		{uint32(4), "4", true},
		{uint8(9), "9", true},
		{-2.5, "-2.5", true},
		{float32(0.5), "0.5", true},
		{66.7, "66.7", true},
		{math.NaN(), "NaN", false},
		{math.Inf(-1), "'-Inf", false},
		{float32(math.Inf(1)), "'+Inf", false},
		{day, "2024-05-01", false},
		{time.Time{}, "", false},
		{nil, "", false},
		{"-3", "'-3", false},
		{true, "true", false},
		{[]byte("=1"), "'=1", false},
		{stringer("=cmd"), "'=cmd", false},
	} {
		if got := text(c.v); got != c.text {
			t.Errorf("text(%#v) = %q, want %q", c.v, got, c.text)
		}
		if got := number(c.v); got != c.number {
			t.Errorf("number(%#v) = %v, want %v", c.v, got, c.number)
		}
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

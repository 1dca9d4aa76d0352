package export

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// safeText is what a text cell holds in either format: the CSV and the
// workbook pass every piece of text through it, so that both show the same
// thing and neither can be made to run anything.
//
// Text here is typed in the field by many hands (names, addresses, notes),
// and the files are opened by office staff in Excel, WPS or LibreOffice.
// A spreadsheet reading a CSV takes a cell that starts with = + - or @ as a
// formula (OWASP's CSV injection: =HYPERLINK to leak the sheet, DDE to run
// a program); a workbook cell we write as a string is not evaluated, but
// becomes a formula the moment someone edits it. So such a cell gets a
// leading apostrophe, the mark spreadsheets themselves use for "this is
// text", and it gets it in both formats, so that the two agree.
//
// Every string gets the rule, with no exemption for what looks like a
// number: a phone number "+86 138…" or "-2+3" is still text to us, and a
// spreadsheet would otherwise turn the first into a formula error or a
// number in scientific notation and the second into 1. "'+86 138…" is
// uglier but says exactly what was typed. Numbers the server computes are
// not strings and never come here (see number), so a negative count stays
// a number.
//
// The trigger also counts after leading white space ("  =1", "\n=1"):
// some importers trim spaces before they look for a formula, and an
// apostrophe before a space costs nothing. Tab and CR, OWASP's other two
// triggers, never lead a cell because cleanRunes has replaced them.
//
// Full-width ＝ ＋ － ＠ are left alone: no spreadsheet is known to start a
// formula with them, and "－" is a common way to write "none" in a form.
func safeText(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, rewritten) {
		s = cleanRunes(s)
	}
	if formulaStart(s) {
		return "'" + s
	}
	return s
}

// formulaStart reports whether a spreadsheet could read s as a formula.
func formulaStart(s string) bool {
	t := strings.TrimLeftFunc(s, unicode.IsSpace)
	if t == "" {
		return false
	}
	switch t[0] {
	case '=', '+', '-', '@':
		return true
	}
	return false
}

// rewritten reports whether cleanRunes changes r.
func rewritten(r rune) bool {
	return r == '\t' || r == '\r' || dropped(r)
}

// cleanRunes keeps what a person typed and drops what only a machine or an
// attacker puts in a cell.
//
// Line breaks stay: notes and addresses hold them, CSV quotes them, and a
// workbook shows them in the cell. CR LF and a lone CR both become LF, the
// one line break every reader agrees on, rather than vanishing and gluing
// two lines together. A tab becomes a space for the same reason (and so no
// cell can start with a tab, an OWASP trigger).
//
// Other C0 controls, DEL and the C1 controls (U+0080–U+009F) are dropped:
// they show as nothing or as boxes, XML 1.0 cannot hold the C0 ones at all
// (excelize would write U+FFFD in their place, the CSV the raw bytes, and
// the formats would disagree), and ESC starts terminal escape sequences
// for anyone who looks at the CSV with cat. The bidirectional embeddings,
// overrides and isolates (U+202A–U+202E, U+2066–U+2069) are dropped because
// they reorder what is displayed, so that a cell can read differently from
// what it holds (Trojan Source, CVE-2021-42574); Chinese and English text
// needs none of them. U+FFFE and U+FFFF are not characters and XML refuses
// them. Bytes that are not UTF-8 become U+FFFD, as XML would have them.
func cleanRunes(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r == '\r':
			if !strings.HasPrefix(s[i+1:], "\n") {
				b.WriteByte('\n')
			}
		case r == '\t':
			b.WriteByte(' ')
		case dropped(r):
		default:
			b.WriteRune(r) // an invalid byte arrives as utf8.RuneError, U+FFFD
		}
	}
	return b.String()
}

// dropped reports whether cleanRunes removes r.
func dropped(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\n' && r != '\t' && r != '\r'
	case r >= 0x7f && r <= 0x9f: // DEL and C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0xfffe || r == 0xffff:
		return true
	}
	return false
}

package syncengine

import (
	"fmt"
	"unicode/utf8"
)

// Limits on text, in bytes.
const (
	maxNameLen = 256
	maxTextLen = 4000
)

// IsID reports whether s is a UUID in its canonical text form (any version;
// Doorbook issues version 7).
func IsID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func checkID(what, s string) error {
	if !IsID(s) {
		return fmt.Errorf("%w: %s %q is not a UUID", ErrInvalid, what, truncate(s))
	}
	return nil
}

func checkText(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%w: %s is %d bytes, over the limit of %d", ErrLimit, what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

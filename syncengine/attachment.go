package syncengine

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// An attachment is a file that goes with a visit (a photo of the meeting,
// a scan of a signed pledge form): named by the SHA-256 of its bytes, so
// that a phone and the server agree on what it is without a clock, and an
// upload cut half way resumes from what the server holds. It is not a
// replicated row: a phone uploads its own visits' files after their rows,
// on a lane of their own, and fetches another worker's only when asked.
type Attachment struct {
	// SHA256 is the hex digest of the content, lower case.
	SHA256 string
	Size   int64
	// Name is the file's name as the worker's app gave it; MediaType its
	// MIME type ("image/jpeg").
	Name, MediaType string
}

// Limits on attachments, the same on the phone and on the server: a visit
// is evidence, not a photo album, and a phone on a weak link must be able
// to finish an upload.
const (
	MaxAttachmentBytes     = 16 << 20
	MaxAttachmentsPerVisit = 8
	// AttachmentChunk is the most content one upload call carries.
	AttachmentChunk   = 256 << 10
	maxAttachmentName = 200
	maxMediaType      = 100
)

// ValidateAttachment checks an attachment's description (not its bytes).
func ValidateAttachment(a Attachment) error {
	if err := ValidateSHA256(a.SHA256); err != nil {
		return err
	}
	switch {
	case a.Size <= 0:
		return fmt.Errorf("%w: an attachment is not empty", ErrInvalid)
	case a.Size > MaxAttachmentBytes:
		return fmt.Errorf("%w: an attachment of %d bytes is over the limit of %d", ErrInvalid, a.Size, MaxAttachmentBytes)
	case a.Name == "" || len(a.Name) > maxAttachmentName || !utf8.ValidString(a.Name) ||
		strings.ContainsAny(a.Name, `/\`) || strings.IndexFunc(a.Name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: an attachment's name must be 1..%d bytes of text without a path or control characters", ErrInvalid, maxAttachmentName)
	case !validMediaType(a.MediaType):
		return fmt.Errorf("%w: media type %q is not type/subtype", ErrInvalid, a.MediaType)
	}
	return nil
}

// ValidateSHA256 checks a content name: 64 lower-case hex digits.
func ValidateSHA256(s string) error {
	if len(s) != 64 || strings.ToLower(s) != s {
		return fmt.Errorf("%w: %q is not a SHA-256 in lower-case hex", ErrInvalid, s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return fmt.Errorf("%w: %q is not a SHA-256 in lower-case hex", ErrInvalid, s)
	}
	return nil
}

// validMediaType accepts the type/subtype of RFC 6838's restricted names,
// which every header and file system can carry.
func validMediaType(s string) bool {
	if len(s) > maxMediaType {
		return false
	}
	typ, sub, ok := strings.Cut(s, "/")
	return ok && mediaName(typ) && mediaName(sub)
}

func mediaName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$&-^_.+", r)
		if !ok {
			return false
		}
	}
	return true
}

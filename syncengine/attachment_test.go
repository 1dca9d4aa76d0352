package syncengine

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAttachment(t *testing.T) {
	ok := Attachment{SHA256: strings.Repeat("ab", 32), Size: 1000, Name: "动员会 照片.jpg", MediaType: "image/jpeg"}
	for _, tt := range []struct {
		name string
		edit func(*Attachment)
		want error
	}{
		{"valid", func(*Attachment) {}, nil},
		{"a scan's type", func(a *Attachment) { a.MediaType = "application/vnd.ms-excel" }, nil},
		{"upper-case hash", func(a *Attachment) { a.SHA256 = strings.ToUpper(a.SHA256) }, ErrInvalid},
		{"short hash", func(a *Attachment) { a.SHA256 = a.SHA256[2:] }, ErrInvalid},
		{"not hex", func(a *Attachment) { a.SHA256 = strings.Repeat("zz", 32) }, ErrInvalid},
		{"empty", func(a *Attachment) { a.Size = 0 }, ErrInvalid},
		{"over the limit", func(a *Attachment) { a.Size = MaxAttachmentBytes + 1 }, ErrInvalid},
		{"at the limit", func(a *Attachment) { a.Size = MaxAttachmentBytes }, nil},
		{"no name", func(a *Attachment) { a.Name = "" }, ErrInvalid},
		{"a path", func(a *Attachment) { a.Name = "../../etc/passwd" }, ErrInvalid},
		{"a Windows path", func(a *Attachment) { a.Name = `C:\photo.jpg` }, ErrInvalid},
		{"a control character", func(a *Attachment) { a.Name = "photo\n.jpg" }, ErrInvalid},
		{"not UTF-8", func(a *Attachment) { a.Name = "\xff.jpg" }, ErrInvalid},
		{"a long name", func(a *Attachment) { a.Name = strings.Repeat("照", 67) + ".jpg" }, ErrInvalid},
		{"no subtype", func(a *Attachment) { a.MediaType = "image" }, ErrInvalid},
		{"parameters", func(a *Attachment) { a.MediaType = "image/jpeg; charset=x" }, ErrInvalid},
		{"empty type", func(a *Attachment) { a.MediaType = "/jpeg" }, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := ok
			tt.edit(&a)
			if err := ValidateAttachment(a); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("ValidateAttachment(%+v) = %v, want %v", a, err, tt.want)
			}
		})
	}
}

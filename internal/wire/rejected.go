package wire

import (
	"errors"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// RejectedChangeID is the id of the change a push's error blames, if the
// error says that change can never be applied (the server names it in a
// RejectedChange detail, under a code of the rules), and "" otherwise: a
// phone sets that change aside and pushes the rest.
func RejectedChangeID(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	switch ce.Code() {
	case connect.CodeInvalidArgument, connect.CodePermissionDenied, connect.CodeNotFound,
		connect.CodeAlreadyExists, connect.CodeResourceExhausted:
	default:
		return ""
	}
	for _, d := range ce.Details() {
		if m, err := d.Value(); err == nil {
			if rc, ok := m.(*pb.RejectedChange); ok {
				return rc.GetChangeId()
			}
		}
	}
	return ""
}

package server

import (
	"context"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// ledgerMaxMessageBytes bounds an import's message: the file, base64 in
// JSON (4/3 of its size), and the rest.
const ledgerMaxMessageBytes = ledger.MaxFileBytes*4/3 + 64<<10

// ownLimits are the procedures whose message may be larger than the
// server's limit.
var ownLimits = map[string]int{
	doorbookv1connect.LedgerServiceImportLedgerProcedure: ledgerMaxMessageBytes,
}

type ledgerService struct{ *Server }

func (s *ledgerService) ImportLedger(ctx context.Context, req *pb.ImportLedgerRequest) (*pb.ImportLedgerResponse, error) {
	rep, err := s.store.ImportLedger(ctx, principal(ctx), store.LedgerImport{
		NodeID: req.GetNodeId(), Name: req.GetFileName(), File: req.GetFile(), DryRun: req.GetDryRun(),
		Clock: func(observed syncengine.Clock) syncengine.Clock {
			s.clock.Observe(observed.HLC)
			return s.clock.Now()
		},
	})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ImportLedgerResponse{Sheet: rep.Sheet, UnknownColumns: rep.Unknown, Applied: rep.Applied, Rows: make([]*pb.ImportRow, len(rep.Rows))}
	for i, o := range rep.Rows {
		row := &pb.ImportRow{Line: uint32(o.Line), Action: pb.ImportAction(o.Action), HouseholdId: o.HouseholdID,
			Refusal: pb.ImportRefusal(o.Refusal), Detail: o.Detail, PersonsAdded: uint32(len(o.Persons)), CategoriesAdded: uint32(len(o.Categories)),
			ResidenceChanges: uint32(len(o.Moves))}
		for _, f := range o.Changed {
			row.Fields = append(row.Fields, f.Name(false))
		}
		res.Rows[i] = row
		switch o.Action {
		case ledger.Create:
			res.Created++
		case ledger.Update:
			res.Updated++
		case ledger.Unchanged:
			res.Unchanged++
		case ledger.Refuse:
			res.Refused++
		}
		res.PersonsAdded += row.PersonsAdded
		res.CategoriesAdded += row.CategoriesAdded
		res.ResidenceChanges += row.ResidenceChanges
	}
	addStat(ctx, "ledger_rows", len(rep.Rows))
	return res, nil
}

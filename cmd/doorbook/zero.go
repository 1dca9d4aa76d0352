package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// period reads --from and --until (dates or RFC 3339 times), the period
// [from, until).
func period(from, until string) (*timestamppb.Timestamp, *timestamppb.Timestamp, error) {
	if err := errors.Join(required("from", from), required("until", until)); err != nil {
		return nil, nil, err
	}
	f, err := parseTime(from)
	if err != nil {
		return nil, nil, err
	}
	u, err := parseTime(until)
	if err != nil {
		return nil, nil, err
	}
	return timestamppb.New(f), timestamppb.New(u), nil
}

// zeroReport records a zero report (零报告) of a grid or community.
func (c *adminCmd) zeroReport(args []string) error {
	fs := c.flags("zero")
	node := fs.String("node", "", "the grid's or community's `id`")
	from := fs.String("from", "", "the period's first `day`")
	until := fs.String("until", "", "the `day` after its last")
	note := fs.String("note", "", "what was checked (`text`)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := required("node", *node); err != nil {
		return err
	}
	f, u, err := period(*from, *until)
	if err != nil {
		return err
	}
	res, err := c.client.PutZeroReport(c.ctx, &pb.PutZeroReportRequest{NodeId: *node, From: f, Until: u, Note: *note})
	if err != nil {
		return err
	}
	z := res.GetZeroReport()
	return c.out.print(map[string]string{"id": z.GetId()}, func(w io.Writer) {
		fmt.Fprintf(w, "zero report %s: nothing found from %s until %s\n", z.GetId(), day(z.GetFrom()), day(z.GetUntil()))
	})
}

func day(t *timestamppb.Timestamp) string { return t.AsTime().Local().Format(time.DateOnly) }

// reporting lists what each community and grid reported in a period.
func (c *adminCmd) reporting(args []string) error {
	fs := c.flags("report reporting")
	node := fs.String("node", "", "org node `id` (default: your subtree)")
	from := fs.String("from", "", "the period's first `day`")
	until := fs.String("until", "", "the `day` after its last")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	f, u, err := period(*from, *until)
	if err != nil {
		return err
	}
	res, err := c.reports.ListReporting(c.ctx, &pb.ListReportingRequest{NodeId: *node, From: f, Until: u})
	if err != nil {
		return err
	}
	return c.out.print(res.GetUnits(), func(w io.Writer) {
		fmt.Fprintln(w, "UNIT\tLEVEL\tITEMS FOUND\tZERO REPORT\tSILENT")
		for _, unit := range res.GetUnits() {
			zero, silent := "-", ""
			if zs := unit.GetZeroReports(); len(zs) > 0 {
				zero = fmt.Sprintf("%s–%s by %s", day(zs[0].GetFrom()), day(zs[0].GetUntil()), zs[0].GetReportedBy())
			}
			if unit.GetSilent() {
				silent = "silent"
			}
			name := unit.GetNode().GetName()
			if unit.GetNode().GetLevel() == pb.OrgLevel_ORG_LEVEL_GRID {
				name = "  " + name
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", name, enumName(pb.OrgLevel_name, "ORG_LEVEL_", int32(unit.GetNode().GetLevel())), unit.GetItems(), zero, silent)
		}
	})
}

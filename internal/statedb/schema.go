// Package statedb stores Doorbook's replicated rows (households, persons,
// category tags, visits and their amendments) in SQLite, merging every write
// with syncengine. The server's SQLite store and the phone's replica both
// keep these tables, so the SQL of a merge is written once; each adds its
// own bookkeeping (the server's change feed, the phone's outbox) around it.
//
// Values live in typed columns, so that queries and exports read them
// directly; the clocks that order them live beside them in one BLOB column
// per row (syncengine.EncodeClocks), read only when merging.
package statedb

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/doorbook/doorbook/internal/sqlitex"
)

// Migrations is a database's schema: these replicated tables as version 1,
// then the database's own migrations (files NNN_name.sql in dir of own,
// numbered from 2). A later version of the replicated tables is taken in by
// an own migration with a line of its own naming it, such as
//
//	-- statedb: SchemaV2
//
// so that each database decides where it falls in its history.
func Migrations(own fs.FS, dir string) ([]sqlitex.Migration, error) {
	return withShared(own, dir, SchemaV1, shared)
}

// withShared is own's migrations after version 1 (v1), each line naming a
// shared schema replaced by parts' SQL for it.
func withShared(own fs.FS, dir, v1 string, parts map[string]string) ([]sqlitex.Migration, error) {
	ms, err := sqlitex.LoadMigrations(own, dir)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		for name, sql := range parts {
			ms[i].SQL = strings.ReplaceAll(ms[i].SQL, "-- statedb: "+name+"\n", sql)
		}
		// A line left is a name misspelt, or one without its line's end:
		// as a comment it would leave the database without the schema.
		if _, rest, ok := strings.Cut(ms[i].SQL, "-- statedb: "); ok {
			line, _, _ := strings.Cut(rest, "\n")
			return nil, fmt.Errorf("migration %s: no shared schema %q", ms[i].Name, line)
		}
	}
	return append([]sqlitex.Migration{{Version: 1, Name: "001_state.sql", SQL: v1}}, ms...), nil
}

// SnapshotMigrations create the replicated tables, exactly as every
// database that embeds them has them, and the visit sums' tables: a
// snapshot file of a scope, which a new replica adopts as its database or
// whose tables it copies whole.
func SnapshotMigrations() []sqlitex.Migration {
	return []sqlitex.Migration{
		{Version: 1, Name: "001_state.sql", SQL: SchemaV1},
		{Version: 2, Name: "002_state.sql", SQL: SchemaV2},
		{Version: 3, Name: "003_indexes.sql", SQL: schemaV3Indexes},
		{Version: 4, Name: "004_sums.sql", SQL: schemaV3SumTables},
		{Version: 5, Name: "005_position.sql", SQL: SchemaV4},
		{Version: 6, Name: "006_residence.sql", SQL: SchemaV5},
		{Version: 7, Name: "007_person_tags.sql", SQL: SchemaV6},
		{Version: 8, Name: "008_co_units.sql", SQL: SchemaV7},
	}
}

// OverSnapshot is Migrations(own, dir) for a snapshot file
// (SnapshotMigrations) that is to become a database of own's schema: the
// parts of the shared schemas a snapshot already holds are left out, so
// that once its schema_migrations rows are cleared and these applied, the
// file has the schema that Migrations gives a new file. A caller compares
// the two (sqlitex.Schema) before trusting that.
func OverSnapshot(own fs.FS, dir string) ([]sqlitex.Migration, error) {
	return withShared(own, dir, "SELECT 1", map[string]string{"SchemaV2": "", "SchemaV3": schemaV3Triggers, "SchemaV4": "", "SchemaV5": "", "SchemaV6": "", "SchemaV7": "", "SchemaV8": SchemaV8})
}

// ReplicatedTables are the tables of a scope's rows, the ones a snapshot
// holds, in the order a snapshot is written; categories and campaigns
// travel apart, as reference data.
func ReplicatedTables() []string {
	return []string{"households", "persons", "tag_elements", "visit_households", "visits", "visit_amendments"}
}

// shared are the versions after 1 of the replicated tables, by name.
var shared = map[string]string{"SchemaV2": SchemaV2, "SchemaV3": SchemaV3, "SchemaV4": SchemaV4, "SchemaV5": SchemaV5, "SchemaV6": SchemaV6, "SchemaV7": SchemaV7,
	"SchemaV8": SchemaV8, "SpecialLinks": SpecialLinks, "SpecialLinksV2": SpecialLinksV2}

// SchemaV4 adds where the phone was when a visit was recorded
// (syncengine.EncodePosition; empty for nowhere known). No index reads it:
// the due list and the sums never do.
const SchemaV4 = `
ALTER TABLE visits ADD COLUMN position TEXT NOT NULL DEFAULT '';
`

// SchemaV5 adds a person's residence status (syncengine.Person.Residence;
// its clock is the last of the person's clocks).
const SchemaV5 = `
ALTER TABLE persons ADD COLUMN residence TEXT NOT NULL DEFAULT '';
`

// SchemaV6 puts categories on persons as well as households
// (syncengine.TagElement.PersonID; empty for the household's own).
const SchemaV6 = `
ALTER TABLE tag_elements ADD COLUMN person_id TEXT NOT NULL DEFAULT '';
`

// SchemaV7 adds the co-units an item's assignment names
// (syncengine.EncodeCoUnits).
const SchemaV7 = `
ALTER TABLE visit_amendments ADD COLUMN co_units TEXT NOT NULL DEFAULT '';
`

// SchemaV1 creates the replicated tables. Released schemas never change:
// a later change is a new migration of each database that embeds this one.
const SchemaV1 = `
CREATE TABLE households (
	id                 TEXT PRIMARY KEY,
	grid_id            TEXT NOT NULL DEFAULT '',
	head_name          TEXT NOT NULL DEFAULT '',
	address            TEXT NOT NULL DEFAULT '',
	phone_mobile       TEXT NOT NULL DEFAULT '',
	phone_landline     TEXT NOT NULL DEFAULT '',
	responsible_worker TEXT NOT NULL DEFAULT '',
	responsible_leader TEXT NOT NULL DEFAULT '',
	responsible_unit   TEXT NOT NULL DEFAULT '',
	member_count       INTEGER NOT NULL DEFAULT 0,
	housing_type       TEXT NOT NULL DEFAULT '',
	notes              TEXT NOT NULL DEFAULT '',
	deleted            INTEGER NOT NULL DEFAULT 0,
	clocks             BLOB NOT NULL
);
CREATE INDEX households_grid ON households(grid_id, id);

CREATE TABLE persons (
	id           TEXT PRIMARY KEY,
	household_id TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	id_number    TEXT NOT NULL DEFAULT '',
	gender       TEXT NOT NULL DEFAULT '',
	birth_date   TEXT NOT NULL DEFAULT '',
	phone        TEXT NOT NULL DEFAULT '',
	relation     TEXT NOT NULL DEFAULT '',
	notes        TEXT NOT NULL DEFAULT '',
	deleted      INTEGER NOT NULL DEFAULT 0,
	clocks       BLOB NOT NULL
);
CREATE INDEX persons_household ON persons(household_id);

CREATE TABLE tag_elements (
	add_id       TEXT PRIMARY KEY,
	household_id TEXT NOT NULL,
	category     TEXT NOT NULL,
	removed      INTEGER NOT NULL DEFAULT 0,
	hlc          INTEGER NOT NULL,
	node         INTEGER NOT NULL
);
CREATE INDEX tag_elements_household ON tag_elements(household_id, category);

CREATE TABLE visits (
	id         TEXT PRIMARY KEY,
	visitor_id TEXT NOT NULL,
	visited_at INTEGER NOT NULL,
	form       INTEGER NOT NULL,
	notes      TEXT NOT NULL,
	hlc        INTEGER NOT NULL,
	node       INTEGER NOT NULL
);
CREATE INDEX visits_visitor ON visits(visitor_id, visited_at);

-- A group visit covers several households; ord keeps their order.
CREATE TABLE visit_households (
	household_id TEXT NOT NULL,
	visit_id     TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	PRIMARY KEY (household_id, visit_id)
) WITHOUT ROWID;
CREATE INDEX visit_households_visit ON visit_households(visit_id);

CREATE TABLE visit_amendments (
	id         TEXT PRIMARY KEY,
	visit_id   TEXT NOT NULL,
	author_id  TEXT NOT NULL,
	kind       INTEGER NOT NULL,
	reason     TEXT NOT NULL,
	notes      TEXT,
	form       INTEGER NOT NULL DEFAULT 0,
	visited_at INTEGER NOT NULL DEFAULT 0,
	hlc        INTEGER NOT NULL,
	node       INTEGER NOT NULL
);
CREATE INDEX visit_amendments_visit ON visit_amendments(visit_id);
`

// SchemaV2 adds what field rules need: a visit's details (materials, findings,
// follow-up, survey answers), tracked-item updates, and the reference data
// admins configure (categories and campaigns, each field a register; seq is
// the server's feed position of the row's last change, 0 on a phone).
const SchemaV2 = `
ALTER TABLE visits ADD COLUMN details TEXT NOT NULL DEFAULT '';
ALTER TABLE visits ADD COLUMN revisit_due INTEGER NOT NULL DEFAULT 0;
-- How many of the visit's findings are tracked items.
ALTER TABLE visits ADD COLUMN tracked INTEGER NOT NULL DEFAULT 0;
-- Due lists and reports read every visit of a scope: this index covers what
-- they read, so that they never touch the rows' notes and details.
CREATE INDEX visits_scan ON visits(id, visited_at, visitor_id, form, hlc, node, revisit_due, tracked, details != '');
-- The visits a due list reads one by one (the rest it sums up).
CREATE INDEX visits_special ON visits(id) WHERE revisit_due != 0 OR tracked != 0 OR details != '';

ALTER TABLE visit_amendments ADD COLUMN finding INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visit_amendments ADD COLUMN unit TEXT NOT NULL DEFAULT '';
ALTER TABLE visit_amendments ADD COLUMN deadline INTEGER NOT NULL DEFAULT 0;

CREATE TABLE categories (
	code         TEXT PRIMARY KEY,
	name_zh      TEXT NOT NULL DEFAULT '',
	name_en      TEXT NOT NULL DEFAULT '',
	parent_code  TEXT NOT NULL DEFAULT '',
	revisit_days INTEGER NOT NULL DEFAULT 0,
	key_group    INTEGER NOT NULL DEFAULT 0,
	deleted      INTEGER NOT NULL DEFAULT 0,
	clocks       BLOB NOT NULL,
	seq          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE campaigns (
	id            TEXT PRIMARY KEY,
	node_id       TEXT NOT NULL DEFAULT '',
	name          TEXT NOT NULL DEFAULT '',
	starts_at     INTEGER NOT NULL DEFAULT 0,
	ends_at       INTEGER NOT NULL DEFAULT 0,
	quotas        TEXT NOT NULL DEFAULT '',
	questionnaire TEXT NOT NULL DEFAULT '',
	deleted       INTEGER NOT NULL DEFAULT 0,
	clocks        BLOB NOT NULL,
	seq           INTEGER NOT NULL DEFAULT 0
);
`

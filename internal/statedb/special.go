package statedb

// Special links. A scope's special visits (with details, a revisit or a
// tracked finding) and its amended ones are few; its visits are many. On
// a server holding many scopes, SpecialVisits and Amendments must find
// the few of one scope, a page of an export or a street among a district's,
// without looking up each of the scope's visits (27 ms a page of 500
// households) or walking every special visit of the database.
// visit_special_links keeps, by household, the links of the visits
// fieldwork.Rows.PlainVisits leaves out. As for the sums, a visit stored
// has its links written by the code that stores it (InsertLinkedVisit,
// since SpecialLinksV2), and triggers follow every other write in the
// statement that makes it; one invariant holds after every write, which
// the tests hold over randomised histories: visit_special_links is what
// specialLinksSelect computes from the raw rows.
//
// As for the sums, no code may REPLACE a row of visits, visit_households
// or visit_amendments: with recursive triggers off (SQLite's default) the
// replaced row goes without its DELETE triggers (internal/layers holds the
// code to this).
//
// The server's database has it (its migration takes SpecialLinks, and
// its rows GridRows.WithSpecialLinks); a phone's, which holds one scope,
// finds its special visits through their index.

// specialVisitOf is the SQL that the visit with id x is special or
// amended, whether or not its row is in.
func specialVisitOf(x string) string {
	return `(EXISTS (SELECT 1 FROM visits v WHERE v.id = ` + x + ` AND (v.revisit_due != 0 OR v.tracked != 0 OR v.details != ''))
		OR EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = ` + x + `))`
}

// specialLinksSelect computes visit_special_links' rows from the raw rows.
var specialLinksSelect = `SELECT vh.household_id, vh.visit_id, vh.ord FROM visit_households vh WHERE ` + specialVisitOf("vh.visit_id")

// respecialOf computes again the special links of the visit with id x.
func respecialOf(x string) string {
	return `DELETE FROM visit_special_links WHERE visit_id = ` + x + `;
	INSERT OR REPLACE INTO visit_special_links ` + specialLinksSelect + ` AND vh.visit_id = ` + x + `;`
}

// SpecialLinks creates visit_special_links, fills it from the rows a
// database holds, and adds the triggers that keep it.
var SpecialLinks = `
CREATE TABLE visit_special_links (
	household_id TEXT NOT NULL,
	visit_id     TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	PRIMARY KEY (household_id, visit_id)
) WITHOUT ROWID;
CREATE INDEX visit_special_links_visit ON visit_special_links (visit_id);
INSERT INTO visit_special_links ` + specialLinksSelect + `;
CREATE TRIGGER special_links_link_in AFTER INSERT ON visit_households
WHEN ` + specialVisitOf("NEW.visit_id") + ` BEGIN
	INSERT OR REPLACE INTO visit_special_links (household_id, visit_id, ord) VALUES (NEW.household_id, NEW.visit_id, NEW.ord);
END;
CREATE TRIGGER special_links_link_out AFTER DELETE ON visit_households BEGIN
	DELETE FROM visit_special_links WHERE household_id = OLD.household_id AND visit_id = OLD.visit_id;
END;
CREATE TRIGGER special_links_link_change AFTER UPDATE ON visit_households BEGIN
	DELETE FROM visit_special_links WHERE household_id = OLD.household_id AND visit_id = OLD.visit_id;
	INSERT OR REPLACE INTO visit_special_links SELECT NEW.household_id, NEW.visit_id, NEW.ord WHERE ` + specialVisitOf("NEW.visit_id") + `;
END;
CREATE TRIGGER special_links_visit_in AFTER INSERT ON visits
WHEN NEW.revisit_due != 0 OR NEW.tracked != 0 OR NEW.details != '' BEGIN
	INSERT OR REPLACE INTO visit_special_links SELECT household_id, visit_id, ord FROM visit_households WHERE visit_id = NEW.id;
END;
CREATE TRIGGER special_links_visit_out AFTER DELETE ON visits BEGIN
	` + respecialOf("OLD.id") + `
END;
CREATE TRIGGER special_links_visit_change AFTER UPDATE OF id, revisit_due, tracked, details ON visits BEGIN
	` + respecialOf("OLD.id") + `
	` + respecialOf("NEW.id") + `
END;
CREATE TRIGGER special_links_amendment_in AFTER INSERT ON visit_amendments BEGIN
	INSERT OR REPLACE INTO visit_special_links SELECT household_id, visit_id, ord FROM visit_households WHERE visit_id = NEW.visit_id;
END;
CREATE TRIGGER special_links_amendment_out AFTER DELETE ON visit_amendments BEGIN
	` + respecialOf("OLD.visit_id") + `
END;
CREATE TRIGGER special_links_amendment_change AFTER UPDATE OF visit_id ON visit_amendments BEGIN
	` + respecialOf("OLD.visit_id") + `
	` + respecialOf("NEW.visit_id") + `
END;
`

// SpecialLinksV2 drops the triggers that linked a visit as its row and
// links came in: InsertLinkedVisit writes them (see SchemaV8 for why).
const SpecialLinksV2 = `
DROP TRIGGER special_links_link_in;
DROP TRIGGER special_links_visit_in;
`

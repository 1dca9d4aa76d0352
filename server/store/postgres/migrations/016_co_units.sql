-- The co-units an item's assignment names (syncengine.EncodeCoUnits: a JSON
-- list, empty for none).
ALTER TABLE visit_amendments ADD COLUMN co_units text NOT NULL DEFAULT '';

-- A report reads every live household of a street and counts its live
-- persons by residence. From these two indexes alone it does not look up
-- a household's or a person's row: 50,000 households and their persons
-- read in 140 ms rather than 240 (with the file mapped).
DROP INDEX households_grid_live;
CREATE INDEX households_grid_live ON households (grid_id, id, head_name, address, member_count) WHERE deleted = 0;
CREATE INDEX persons_household_live ON persons (household_id, residence) WHERE deleted = 0;

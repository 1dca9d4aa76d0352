-- A person's residence status (syncengine.Person.Residence: resident,
-- migrant, moved_away, or '' for not said).
ALTER TABLE persons ADD COLUMN residence text NOT NULL DEFAULT '';

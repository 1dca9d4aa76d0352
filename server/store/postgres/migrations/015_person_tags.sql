-- Categories on persons as well as households (syncengine.TagElement.PersonID;
-- '' for the household's own).
ALTER TABLE tag_elements ADD COLUMN person_id text NOT NULL DEFAULT '';

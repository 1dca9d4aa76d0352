-- Where the phone was when a visit was recorded (syncengine.EncodePosition;
-- '' for nowhere known).
ALTER TABLE visits ADD COLUMN position text NOT NULL DEFAULT '';

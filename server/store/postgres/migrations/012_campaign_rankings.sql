-- A campaign's ranking rule (fieldwork.EncodeRanking: weights, and rewards
-- and fines by rank), set by admins on the server; phones do not need it.
CREATE TABLE campaign_rankings (
	campaign_id  text PRIMARY KEY,
	spec         text NOT NULL
);

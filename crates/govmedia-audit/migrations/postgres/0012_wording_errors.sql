-- The serious-wording-error veto item (R3.2.3): errors found in published content when
-- it is screened again with the lexicon of the time.

ALTER TABLE compliance_assessments ADD COLUMN serious_wording_errors BIGINT NOT NULL DEFAULT 0;

-- Published content screened again against the lexicon as it grows (R7.1.1, R3.2.3):
-- per publication, the lexicon version it was last screened with and the block terms
-- found then, so each term found is recorded once.

CREATE TABLE publication_screenings (
    publication_id   TEXT PRIMARY KEY REFERENCES publications (id),
    lexicon_version  BIGINT NOT NULL,
    found_terms      TEXT NOT NULL,
    screened_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX publication_screenings_version ON publication_screenings (lexicon_version);

-- SQLite has no TRUNCATE: a DELETE without WHERE on a table with triggers deletes row by
-- row, so 0001's row triggers already refuse it. The chain head (moved by every
-- append) vouches for the end of the log and is never deleted (issue 18).

CREATE TRIGGER audit_chain_head_kept BEFORE DELETE ON audit_chain_head
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on audit_chain_head refused'); END;

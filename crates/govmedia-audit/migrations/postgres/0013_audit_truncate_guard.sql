-- TRUNCATE fires no row trigger, so the append-only guard of 0001 let it empty the log
-- (issue 18). Statement triggers refuse it on the events and the checkpoints, and the
-- chain head (moved by every append) is never deleted or truncated either: it vouches
-- for the end of the log (VerifyLog reports a log that ends before its head).
-- The role that owns these tables can still disable triggers; run the service as a
-- role that does not (deploy/postgres/audit-roles.sql, docs/operations.md).

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_head_kept BEFORE DELETE OR TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Whatever role the service runs as, it may read and add to the log, never change or
-- empty it: a grant of more (default privileges of deploy/postgres/service-roles.sql
-- give the service role UPDATE and DELETE on the service's tables) is taken back here.
DO $$
DECLARE
    holder TEXT;
BEGIN
    FOR holder IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
        WHERE table_schema = current_schema()
          AND table_name IN ('audit_events', 'audit_checkpoints')
          AND privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
          AND grantee <> current_user
    LOOP
        EXECUTE format(
            'REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_checkpoints FROM %s',
            CASE WHEN holder = 'PUBLIC' THEN 'PUBLIC' ELSE quote_ident(holder) END
        );
    END LOOP;
END
$$;

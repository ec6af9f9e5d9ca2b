-- Two roles per govmedia service on PostgreSQL: an owner, used only to migrate
-- (GOVMEDIA_DATABASE_OWNER_URL), and the role the service runs as (GOVMEDIA_DATABASE_URL),
-- which reads and writes the service's tables but owns none of them. A role that owns
-- no table cannot drop it, alter it or disable its triggers: the audit log's
-- append-only guard (R1.3.5) then holds against the service's own credentials.
--
-- Run once per service as a superuser, before the service's first start:
--   psql "$ADMIN_URL" -v schema=govmedia_audit -v owner=govmedia_audit_owner \
--        -v app=govmedia_audit -v owner_password="$(cat owner.secret)" \
--        -v app_password="$(cat app.secret)" -f deploy/postgres/service-roles.sql
-- then start the service with
--   GOVMEDIA_DATABASE_OWNER_URL=postgres://govmedia_audit_owner:…@host/db?options=-c%20search_path%3Dgovmedia_audit
--   GOVMEDIA_DATABASE_URL=postgres://govmedia_audit:…@host/db?options=-c%20search_path%3Dgovmedia_audit
-- The audit service's migrations take UPDATE, DELETE and TRUNCATE on the log tables
-- back from every role but the owner. docs/operations.md has the whole procedure.

CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
CREATE SCHEMA :"schema" AUTHORIZATION :"owner";
GRANT USAGE ON SCHEMA :"schema" TO :"app";
-- Every table and sequence the owner creates from now on (each migration).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";

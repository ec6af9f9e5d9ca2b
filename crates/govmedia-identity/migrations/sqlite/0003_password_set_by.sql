-- Who set each password when it was not its owner (an administrator's reset, the
-- account's creation): shown to the owner at the next sign-in (issue 18).

ALTER TABLE password_history ADD COLUMN set_by TEXT NOT NULL DEFAULT '';
ALTER TABLE password_history ADD COLUMN set_by_name TEXT NOT NULL DEFAULT '';

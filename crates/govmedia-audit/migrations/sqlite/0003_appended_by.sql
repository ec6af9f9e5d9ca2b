-- Who appended each event: the authenticated client id of the service principal that
-- called AppendEvents (issue 18). Hashed with the event (canonical form GMA2); empty on
-- events appended before, which keep the GMA1 form.
ALTER TABLE audit_events ADD COLUMN appended_by TEXT NOT NULL DEFAULT '';

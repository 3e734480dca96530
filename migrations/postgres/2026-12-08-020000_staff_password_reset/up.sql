-- Issue 19: an admin resets a user's password to a temporary one; until the user sets their
-- own at the next sign-in, every page but the account page sends them there.
ALTER TABLE staff_users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;

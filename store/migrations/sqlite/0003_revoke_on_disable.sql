-- Disabling a user revokes its tokens, however it is disabled (an import,
-- plain SQL): the watermark moves to the moment of the change (Unix
-- nanoseconds, from julianday's millisecond precision).
CREATE TRIGGER users_revoke_on_disable AFTER UPDATE OF disabled ON users
WHEN NEW.disabled AND NOT OLD.disabled
BEGIN
    UPDATE users
    SET tokens_revoked_before = MAX(tokens_revoked_before,
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) * 1000000)
    WHERE id = NEW.id;
END;

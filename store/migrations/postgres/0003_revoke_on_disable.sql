-- Disabling a user revokes its tokens, however it is disabled (an import,
-- plain SQL): the watermark moves to the moment of the change.
CREATE FUNCTION authnode_revoke_on_disable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.disabled AND NOT OLD.disabled THEN
        NEW.tokens_revoked_before := GREATEST(NEW.tokens_revoked_before,
            (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000)::BIGINT);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER users_revoke_on_disable BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION authnode_revoke_on_disable();

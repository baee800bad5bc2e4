-- The change feed: every change to what the cache holds sends a
-- notification on the channel authnode_changes, delivered at commit, with a
-- JSON payload naming what changed: {"user": id}, {"role": name} or
-- {"all": true}. Nodes LISTEN and invalidate what changed, so a permission
-- changed with plain SQL reaches every node without an admin call.
CREATE FUNCTION authnode_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
    col  text := TG_ARGV[1];
    cur  text;
    prev text;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        cur := to_jsonb(NEW) ->> col;
        PERFORM pg_notify('authnode_changes', json_build_object(kind, cur)::text);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        prev := to_jsonb(OLD) ->> col;
        IF prev IS DISTINCT FROM cur THEN
            PERFORM pg_notify('authnode_changes', json_build_object(kind, prev)::text);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION authnode_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authnode_changes', '{"all": true}');
    RETURN NULL;
END $$;

CREATE TRIGGER users_changes AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION authnode_notify('user', 'id');
CREATE TRIGGER user_roles_changes AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION authnode_notify('user', 'user_id');
CREATE TRIGGER api_keys_changes AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION authnode_notify('user', 'user_id');
CREATE TRIGGER roles_changes AFTER INSERT OR UPDATE OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION authnode_notify('role', 'name');
CREATE TRIGGER role_permissions_changes AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION authnode_notify('role', 'role');

CREATE TRIGGER users_truncated AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION authnode_notify_all();
CREATE TRIGGER user_roles_truncated AFTER TRUNCATE ON user_roles FOR EACH STATEMENT EXECUTE FUNCTION authnode_notify_all();
CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION authnode_notify_all();
CREATE TRIGGER roles_truncated AFTER TRUNCATE ON roles FOR EACH STATEMENT EXECUTE FUNCTION authnode_notify_all();
CREATE TRIGGER role_permissions_truncated AFTER TRUNCATE ON role_permissions FOR EACH STATEMENT EXECUTE FUNCTION authnode_notify_all();

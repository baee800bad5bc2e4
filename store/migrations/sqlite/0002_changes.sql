-- The change feed: every change to what the cache holds appends a row
-- naming the user or role that changed. SQLite serialises writers, so ids
-- grow in commit order: nodes poll for rows after the last id they read and
-- invalidate what changed, so a permission changed with plain SQL reaches
-- every node without an admin call. at is Unix milliseconds, for cleanup.
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT,
    role    TEXT,
    at      INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);

CREATE TRIGGER users_inserted AFTER INSERT ON users BEGIN
    INSERT INTO changes (user_id) VALUES (NEW.id);
END;
CREATE TRIGGER users_updated AFTER UPDATE ON users BEGIN
    INSERT INTO changes (user_id) VALUES (NEW.id);
    INSERT INTO changes (user_id) SELECT OLD.id WHERE OLD.id IS NOT NEW.id;
END;
CREATE TRIGGER users_deleted AFTER DELETE ON users BEGIN
    INSERT INTO changes (user_id) VALUES (OLD.id);
END;

CREATE TRIGGER user_roles_inserted AFTER INSERT ON user_roles BEGIN
    INSERT INTO changes (user_id) VALUES (NEW.user_id);
END;
CREATE TRIGGER user_roles_updated AFTER UPDATE ON user_roles BEGIN
    INSERT INTO changes (user_id) VALUES (NEW.user_id);
    INSERT INTO changes (user_id) SELECT OLD.user_id WHERE OLD.user_id IS NOT NEW.user_id;
END;
CREATE TRIGGER user_roles_deleted AFTER DELETE ON user_roles BEGIN
    INSERT INTO changes (user_id) VALUES (OLD.user_id);
END;

CREATE TRIGGER api_keys_inserted AFTER INSERT ON api_keys BEGIN
    INSERT INTO changes (user_id) VALUES (NEW.user_id);
END;
CREATE TRIGGER api_keys_updated AFTER UPDATE ON api_keys BEGIN
    INSERT INTO changes (user_id) VALUES (NEW.user_id);
    INSERT INTO changes (user_id) SELECT OLD.user_id WHERE OLD.user_id IS NOT NEW.user_id;
END;
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys BEGIN
    INSERT INTO changes (user_id) VALUES (OLD.user_id);
END;

CREATE TRIGGER roles_inserted AFTER INSERT ON roles BEGIN
    INSERT INTO changes (role) VALUES (NEW.name);
END;
CREATE TRIGGER roles_updated AFTER UPDATE ON roles BEGIN
    INSERT INTO changes (role) VALUES (NEW.name);
    INSERT INTO changes (role) SELECT OLD.name WHERE OLD.name IS NOT NEW.name;
END;
CREATE TRIGGER roles_deleted AFTER DELETE ON roles BEGIN
    INSERT INTO changes (role) VALUES (OLD.name);
END;

CREATE TRIGGER role_permissions_inserted AFTER INSERT ON role_permissions BEGIN
    INSERT INTO changes (role) VALUES (NEW.role);
END;
CREATE TRIGGER role_permissions_updated AFTER UPDATE ON role_permissions BEGIN
    INSERT INTO changes (role) VALUES (NEW.role);
    INSERT INTO changes (role) SELECT OLD.role WHERE OLD.role IS NOT NEW.role;
END;
CREATE TRIGGER role_permissions_deleted AFTER DELETE ON role_permissions BEGIN
    INSERT INTO changes (role) VALUES (OLD.role);
END;

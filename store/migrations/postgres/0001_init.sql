-- Times are Unix nanoseconds (BIGINT), the same in every driver, so
-- watermarks keep sub-second precision.
CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    disabled              BOOLEAN NOT NULL DEFAULT FALSE,
    tokens_revoked_before BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE roles (
    name TEXT PRIMARY KEY
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE role_permissions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    role       TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    action     TEXT NOT NULL,
    conditions TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX role_permissions_role ON role_permissions (role);

CREATE TABLE api_keys (
    key_sha256 TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    expires_at BIGINT NOT NULL DEFAULT 0,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE sessions (
    user_id    TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

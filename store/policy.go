package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/avion/authnode/auth"
)

// ImportPolicy writes p into the store in one transaction. It upserts what
// the file names: roles (their permissions replaced), users (their roles
// replaced) and API keys. With replace, the store is made equal to the
// file, except that a user missing from the file is never deleted: it is
// disabled, loses its roles and keys, and its tokens are revoked, so that no
// token issued to it becomes valid again. Disabling a user revokes its
// tokens (the watermark moves to now).
func (s *Store) ImportPolicy(ctx context.Context, p *PolicyFile, replace bool, now time.Time) error {
	s.count(KindAdmin)
	tx, err := s.db.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	im := importer{tx: tx, ctx: ctx, now: now.UnixNano()}
	steps := []func(*PolicyFile) error{im.roles, im.users, im.apiKeys}
	if replace {
		steps = append(steps, im.removeOthers)
	}
	for _, step := range steps {
		if err := step(p); err != nil {
			return fmt.Errorf("store: import: %w", err)
		}
	}
	return tx.Commit()
}

type importer struct {
	tx  tx
	ctx context.Context
	now int64
}

func (im importer) exec(q string, args ...any) error {
	_, err := im.tx.ExecContext(im.ctx, q, args...)
	return err
}

func (im importer) roles(p *PolicyFile) error {
	for _, r := range p.Roles {
		if err := im.exec(`INSERT INTO roles (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, r.Name); err != nil {
			return err
		}
		if err := im.exec(`DELETE FROM role_permissions WHERE role = ?`, r.Name); err != nil {
			return err
		}
		for _, perm := range r.Permissions {
			conds, _ := json.Marshal(perm.Conditions)
			if perm.Conditions == nil {
				conds = []byte("{}")
			}
			if err := im.exec(`INSERT INTO role_permissions (role, resource, action, conditions) VALUES (?, ?, ?, ?)`,
				r.Name, perm.Resource, perm.Action, string(conds)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (im importer) users(p *PolicyFile) error {
	for _, u := range p.Users {
		revoke := int64(0)
		if u.Disabled {
			revoke = im.now
		}
		if err := im.exec(`INSERT INTO users (id, disabled, tokens_revoked_before) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET disabled = excluded.disabled, tokens_revoked_before = CASE
			WHEN excluded.tokens_revoked_before > users.tokens_revoked_before THEN excluded.tokens_revoked_before
			ELSE users.tokens_revoked_before END`, u.ID, u.Disabled, revoke); err != nil {
			return err
		}
		if err := im.exec(`DELETE FROM user_roles WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		for _, r := range u.Roles {
			if err := im.exec(`INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, u.ID, r); err != nil {
				return fmt.Errorf("user %s: role %s is neither in the file nor in the store: %w", u.ID, r, err)
			}
		}
	}
	return nil
}

func (im importer) apiKeys(p *PolicyFile) error {
	for _, k := range p.APIKeys {
		scopes, _ := json.Marshal(k.Scopes)
		if k.Scopes == nil {
			scopes = []byte("[]")
		}
		var expires int64
		if k.ExpiresAt != nil {
			expires = k.ExpiresAt.UnixNano()
		}
		err := im.exec(`INSERT INTO api_keys (key_sha256, user_id, name, scopes, expires_at, revoked) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (key_sha256) DO UPDATE SET user_id = excluded.user_id, name = excluded.name,
			scopes = excluded.scopes, expires_at = excluded.expires_at, revoked = excluded.revoked`,
			k.KeySHA256, k.User, k.Name, string(scopes), expires, k.Revoked)
		if err != nil {
			return fmt.Errorf("api key %s of %s: user unknown: %w", k.Name, k.User, err)
		}
	}
	return nil
}

// removeOthers makes the store equal to the file (see ImportPolicy).
func (im importer) removeOthers(p *PolicyFile) error {
	keep := func(table, col string, names []string) error {
		args, marks := inList(names)
		return im.exec(`DELETE FROM `+table+` WHERE `+col+` NOT IN (`+marks+`)`, args...)
	}
	var roles, users, keys []string
	for _, r := range p.Roles {
		roles = append(roles, r.Name)
	}
	for _, u := range p.Users {
		users = append(users, u.ID)
	}
	for _, k := range p.APIKeys {
		keys = append(keys, k.KeySHA256)
	}
	if err := keep("roles", "name", roles); err != nil {
		return err
	}
	if err := keep("api_keys", "key_sha256", keys); err != nil {
		return err
	}
	args, marks := inList(users)
	if err := im.exec(`DELETE FROM user_roles WHERE user_id NOT IN (`+marks+`)`, args...); err != nil {
		return err
	}
	return im.exec(`UPDATE users SET disabled = ?, tokens_revoked_before = CASE
		WHEN tokens_revoked_before > ? THEN tokens_revoked_before ELSE ? END
		WHERE id NOT IN (`+marks+`)`, append([]any{true, im.now, im.now}, args...)...)
}

// inList returns names as arguments and placeholders; an empty list matches
// nothing (” is no valid name).
func inList(names []string) ([]any, string) {
	if len(names) == 0 {
		return []any{""}, "?"
	}
	args := make([]any, len(names))
	marks := make([]byte, 0, 2*len(names))
	for i, n := range names {
		args[i] = n
		if i > 0 {
			marks = append(marks, ',')
		}
		marks = append(marks, '?')
	}
	return args, string(marks)
}

// ExportPolicy reads the whole policy, sorted, with API keys as hashes only.
func (s *Store) ExportPolicy(ctx context.Context) (*PolicyFile, error) {
	s.count(KindAdmin)
	p := &PolicyFile{}
	if err := s.exportRoles(ctx, p); err != nil {
		return nil, err
	}
	if err := s.exportUsers(ctx, p); err != nil {
		return nil, err
	}
	return p, s.exportKeys(ctx, p)
}

func (s *Store) exportRoles(ctx context.Context, p *PolicyFile) error {
	rows, err := s.db.QueryContext(ctx, `SELECT r.name, rp.resource, rp.action, rp.conditions
		FROM roles r LEFT JOIN role_permissions rp ON rp.role = r.name ORDER BY r.name, rp.id`)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var res, act, conds sql.NullString
		if err := rows.Scan(&name, &res, &act, &conds); err != nil {
			return fmt.Errorf("store: export: %w", err)
		}
		if len(p.Roles) == 0 || p.Roles[len(p.Roles)-1].Name != name {
			p.Roles = append(p.Roles, Role{Name: name})
		}
		if res.Valid {
			perm := auth.Permission{Resource: res.String, Action: act.String}
			_ = json.Unmarshal([]byte(conds.String), &perm.Conditions)
			if len(perm.Conditions) == 0 {
				perm.Conditions = nil
			}
			last := &p.Roles[len(p.Roles)-1]
			last.Permissions = append(last.Permissions, perm)
		}
	}
	return rows.Err()
}

func (s *Store) exportUsers(ctx context.Context, p *PolicyFile) error {
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.disabled, ur.role FROM users u
		LEFT JOIN user_roles ur ON ur.user_id = u.id ORDER BY u.id, ur.role`)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var disabled bool
		var role sql.NullString
		if err := rows.Scan(&id, &disabled, &role); err != nil {
			return fmt.Errorf("store: export: %w", err)
		}
		if len(p.Users) == 0 || p.Users[len(p.Users)-1].ID != id {
			p.Users = append(p.Users, User{ID: id, Disabled: disabled, Roles: []string{}})
		}
		if role.Valid {
			last := &p.Users[len(p.Users)-1]
			last.Roles = append(last.Roles, role.String)
		}
	}
	return rows.Err()
}

func (s *Store) exportKeys(ctx context.Context, p *PolicyFile) error {
	rows, err := s.db.QueryContext(ctx, `SELECT key_sha256, user_id, name, scopes, expires_at, revoked FROM api_keys ORDER BY user_id, name, key_sha256`)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k APIKey
		var scopes string
		var expires int64
		if err := rows.Scan(&k.KeySHA256, &k.User, &k.Name, &scopes, &expires, &k.Revoked); err != nil {
			return fmt.Errorf("store: export: %w", err)
		}
		_ = json.Unmarshal([]byte(scopes), &k.Scopes)
		if len(k.Scopes) == 0 {
			k.Scopes = nil
		}
		if expires != 0 {
			k.ExpiresAt = &Timestamp{fromNanos(expires)}
		}
		p.APIKeys = append(p.APIKeys, k)
	}
	return rows.Err()
}

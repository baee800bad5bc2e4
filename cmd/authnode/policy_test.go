package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyImportExport(t *testing.T) {
	dir := t.TempDir()
	source := "sqlite://" + filepath.Join(dir, "nested", "authnode.db")
	file := filepath.Join(dir, "policy.yaml")
	const secret = "ak_live_0123456789abcdef"
	policyYAML := "roles:\n  - name: editor\n    permissions:\n      - {resource: \"posts:*\", action: write}\n" +
		"users:\n  - {id: alice, roles: [editor]}\napi_keys:\n  - {key: \"" + secret + "\", user: alice, name: ci}\n"
	if err := os.WriteFile(file, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"policy", "import", "--source", source, file}, &out, &errOut); code != 0 {
		t.Fatalf("import: %d %s", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"policy", "export", "--source", source}, &out, &errOut); code != 0 {
		t.Fatalf("export: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "posts:*") || !strings.Contains(out.String(), "key_sha256") || strings.Contains(out.String(), secret) {
		t.Fatalf("export:\n%s", out.String())
	}

	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("roles:\n  - name: r\n    grants: []\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy"}, 2, "want import or export"},
		{[]string{"policy", "delete"}, 2, "want import or export"},
		{[]string{"policy", "import", "--source", source}, 1, "exactly one policy file"},
		{[]string{"policy", "import", "--source", source, bad}, 1, "line 3"},
		{[]string{"policy", "import", "--source", "mysql://x", file}, 1, "source URL"},
		{[]string{"policy", "export", "--source", source, "extra"}, 1, "unexpected argument"},
		{[]string{"policy", "export", "--nope"}, 2, "flag provided but not defined"},
	} {
		errOut.Reset()
		if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("run(%q) = %d, %q", tc.args, code, errOut.String())
		}
	}
}

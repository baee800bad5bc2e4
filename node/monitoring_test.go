package node_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
)

// TestMonitoringQueriesUseExistingMetrics: every metric a panel of
// monitoring/grafana-dashboard.json or an expression of
// monitoring/alerts.yml queries is one a node exposes or a recording rule
// of monitoring/alerts.yml defines. A renamed metric fails here, not on an
// operator's empty dashboard.
func TestMonitoringQueriesUseExistingMetrics(t *testing.T) {
	n := nodetest.Start(t, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) {
		cfg.Validator = newSigner(t).validator(t)
	}})[0]
	known := exposedMetrics(n.Metrics())
	rules := readRules(t, "../monitoring/alerts.yml")
	for _, r := range rules {
		if r.Record != "" {
			known[r.Record] = true
		}
	}
	queries := map[string][]string{} // query → where
	for _, r := range rules {
		where := "alerts.yml: " + r.Record + r.Alert
		queries[r.Expr] = append(queries[r.Expr], where)
	}
	for where, q := range dashboardQueries(t, "../monitoring/grafana-dashboard.json") {
		queries[q] = append(queries[q], where)
	}
	if len(queries) < 20 {
		t.Fatalf("only %d queries found: the files were not parsed as expected", len(queries))
	}
	for q, where := range queries {
		for _, name := range queriedMetrics(q) {
			if !known[name] {
				t.Errorf("%s queries %q, which no node exposes and no recording rule defines:\n%s", where, name, q)
			}
		}
	}
}

// exposedMetrics returns every metric name reg describes, with a
// histogram's _bucket, _sum and _count series.
func exposedMetrics(reg *prometheus.Registry) map[string]bool {
	known := map[string]bool{}
	for _, name := range describedNames(reg) {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			known[name+suffix] = true
		}
	}
	return known
}

// describedNames returns the name of every metric reg describes.
func describedNames(reg *prometheus.Registry) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

type rule struct {
	Record, Alert, Expr string
}

func readRules(t *testing.T, path string) []rule {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// dashboardQueries returns every PromQL query of the dashboard, by where
// it is: each panel target's expr and each template variable's
// label_values metric.
func dashboardQueries(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	out := map[string]string{}
	labelValues := regexp.MustCompile(`^label_values\(([^,]+),`)
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = "panel " + title
			}
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					out[where+": "+s] = s
				} else if ok && k == "definition" {
					if m := labelValues.FindStringSubmatch(s); m != nil {
						out["variable: "+s] = m[1]
					}
				}
				walk(x, where)
			}
		case []any:
			for _, x := range v {
				walk(x, where)
			}
		}
	}
	walk(doc, "dashboard")
	return out
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promModifiers = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariables = regexp.MustCompile(`\$\{?\w+\}?`)
	promNumbers   = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b`)
	promIdents    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords  = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring", "group_left", "group_right"}
)

// queriedMetrics returns the metric names q selects: identifiers outside
// strings, label matchers, ranges and grouping clauses, that are neither
// functions nor keywords.
func queriedMetrics(q string) []string {
	for _, re := range []*regexp.Regexp{promStrings, promMatchers, promRanges, promModifiers, promVariables, promNumbers} {
		q = re.ReplaceAllString(q, " ")
	}
	var out []string
	for _, m := range promIdents.FindAllStringSubmatch(q, -1) {
		name := strings.TrimSpace(m[0])
		if m[1] != "" || slices.Contains(promKeywords, strings.ToLower(name)) {
			continue // a function or an aggregation
		}
		out = append(out, name)
	}
	return out
}

// TestQueriedMetrics checks the PromQL scan the test above relies on.
func TestQueriedMetrics(t *testing.T) {
	for q, want := range map[string][]string{
		`sum by (cache_type) (rate(auth_cache_hits_total{job=~"$job"}[5m]))`:                       {"auth_cache_hits_total"},
		`histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket[$__rate_interval]))) > 5e-3`:  {"a_seconds_bucket"},
		`time() - max(x_ts{issuer="a b"}) unless on (issuer) y == 1`:                               {"x_ts", "y"},
		`auth_cache:hit_rate_percent:rate5m < 90 and on(cache_type) auth_cache:lookups:rate5m > 1`: {"auth_cache:hit_rate_percent:rate5m", "auth_cache:lookups:rate5m"},
	} {
		if got := queriedMetrics(q); !slices.Equal(got, want) {
			t.Errorf("queriedMetrics(%q) = %q, want %q", q, got, want)
		}
	}
}

// TestMetricsDocMatchesNode: docs/metrics.md lists exactly the metrics a
// node exposes (its own and the plan's; not Go's and the process's).
func TestMetricsDocMatchesNode(t *testing.T) {
	n := nodetest.Start(t, 1, nodetest.Options{})[0]
	exposed := map[string]bool{}
	for _, name := range describedNames(n.Metrics()) {
		if strings.HasPrefix(name, "auth_cache_") || strings.HasPrefix(name, "authnode_") {
			exposed[name] = true
		}
	}
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `((?:auth_cache|authnode)_[a-z_]+)` \\|")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		documented[m[1]] = true
	}
	for name := range exposed {
		if !documented[name] {
			t.Errorf("%s is exposed but not in docs/metrics.md", name)
		}
	}
	for name := range documented {
		if !exposed[name] {
			t.Errorf("docs/metrics.md lists %s, which no node exposes", name)
		}
	}
	if len(documented) < 30 {
		t.Fatalf("only %d metrics found in docs/metrics.md: its tables were not parsed", len(documented))
	}
}

// TestDashboardIsImportable checks what Grafana needs to import the
// dashboard: a title and uid, panels with unique ids and a type, each
// inside the 24-column grid, and every query with a refId, unique in its
// panel, on the $datasource variable.
func TestDashboardIsImportable(t *testing.T) {
	b, err := os.ReadFile("../monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title, UID string
		Panels     []struct {
			ID      int
			Type    string
			Title   string
			GridPos struct{ H, W, X, Y int }
			Targets []struct {
				RefID      string `json:"refId"`
				Expr       string
				Datasource struct{ UID string }
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("title %q, uid %q, %d panels", d.Title, d.UID, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.Type == "" || p.ID == 0 || ids[p.ID] {
			t.Errorf("panel %q: type %q, id %d (unique ids are required)", p.Title, p.Type, p.ID)
		}
		ids[p.ID] = true
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: grid position %+v outside the 24 columns", p.Title, g)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.RefID == "" || refs[q.RefID] || q.Expr == "" || q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: query %q (refId %q, data source %q)", p.Title, q.Expr, q.RefID, q.Datasource.UID)
			}
			refs[q.RefID] = true
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

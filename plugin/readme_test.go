//go:build !yaegi
// +build !yaegi

package zegocallback

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
)

// TestREADMEOptionsTable holds the README's options table against Config and
// CreateConfig: every key of the configuration has a row, every row names a key, and the
// default a row gives is CreateConfig's. Traefik matches keys without regard to case.
func TestREADMEOptionsTable(t *testing.T) {
	text := readmeSection(t, "### Options")
	row := regexp.MustCompile("(?m)^\\| (`[^|]+`) \\| ([^|]+?) \\|")
	key := regexp.MustCompile("`([a-zA-Z.]+)`")
	documented := map[string]string{} // key, lower case -> default as written
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		for _, k := range key.FindAllStringSubmatch(m[1], -1) {
			documented[strings.ToLower(k[1])] = m[2]
		}
	}
	defaults := map[string]string{} // key, lower case -> CreateConfig's value, as the README writes it
	configDefaults(reflect.ValueOf(*CreateConfig()), "", defaults)
	for k, want := range defaults {
		got, ok := documented[k]
		switch {
		case !ok:
			t.Errorf("the README's options table has no row for %s", k)
		case got != want && !(want == "empty" && (got == "none" || got == "all")):
			t.Errorf("the README gives %s the default %s; CreateConfig's is %s", k, got, want)
		}
	}
	for k := range documented {
		if _, ok := defaults[k]; !ok {
			t.Errorf("the README's options table has a row for %s, which Config does not hold", k)
		}
	}
}

// configDefaults writes each field of a configuration value, as a key under prefix, with
// its value as the README's table writes it: a string quoted, a number or a boolean as
// it is, an empty list or map "empty".
func configDefaults(v reflect.Value, prefix string, out map[string]string) {
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("mapstructure") == ",remain" {
			continue // not a key: the keys no field takes
		}
		name := prefix + strings.ToLower(v.Type().Field(i).Name)
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			configDefaults(f, name+".", out)
		case reflect.String:
			out[name] = fmt.Sprintf("`%q`", f.String())
		case reflect.Slice, reflect.Map:
			out[name] = "empty"
			if f.Len() > 0 {
				out[name] = fmt.Sprint(f.Interface())
			}
		default:
			out[name] = fmt.Sprintf("`%v`", f.Interface())
		}
	}
}

// readmeSection returns the README's section under heading, to the next heading.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("the README has no %s section", heading)
	}
	text = text[start+1:]
	if end := strings.Index(text[1:], "\n#"); end >= 0 {
		text = text[:end+1]
	}
	return text
}

// TestREADMEStatusTable holds the README's status table against the rejections the
// middleware answers: each status and code of one is a row, and each row with a code is
// one of them.
func TestREADMEStatusTable(t *testing.T) {
	text := readmeSection(t, "## Status codes")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| (\\d{3}) \\| `([a-z_]+)` \\|").FindAllStringSubmatch(text, -1) {
		documented[m[1]+" "+m[2]] = true
	}
	answered := map[string]bool{}
	for _, r := range rejections {
		answered[strconv.Itoa(r.status)+" "+r.code] = true
		if !documented[strconv.Itoa(r.status)+" "+r.code] {
			t.Errorf("the README's status table has no row for %d %s", r.status, r.code)
		}
	}
	for row := range documented {
		if !answered[row] {
			t.Errorf("the README's status table has a row for %s, which the middleware never answers", row)
		}
	}
}

// TestREADMERefusedTable holds the README's table of what New refuses against the
// configurations the conformance table shows refused: each key New's errors name has a
// row, and each key of a row is named by some refused configuration (a row's key covers
// the keys under it: redis covers redis.address).
func TestREADMERefusedTable(t *testing.T) {
	text := readmeSection(t, "### Refused at load")
	var rowKeys []string
	for _, m := range regexp.MustCompile("(?m)^\\| ([^|]+) \\|").FindAllStringSubmatch(text, -1) {
		for _, k := range regexp.MustCompile("`([a-zA-Z.]+)`").FindAllStringSubmatch(m[1], -1) {
			rowKeys = append(rowKeys, k[1])
		}
		if strings.HasPrefix(m[1], "any key") {
			rowKeys = append(rowKeys, "unknown")
		}
	}
	keyOf := regexp.MustCompile(`^[a-zA-Z.]+`)
	var named []string
	for _, c := range conformance.ConfigCases(t) {
		if c.WantErr == "" {
			continue
		}
		k := keyOf.FindString(c.WantErr)
		if strings.HasPrefix(c.WantErr, `"`) || k == "" {
			t.Errorf("%s: its error %q names no key first", c.Desc, c.WantErr)
			continue
		}
		named = append(named, k)
		found := false
		for _, r := range rowKeys {
			found = found || r == k
		}
		if !found {
			t.Errorf("%s: New refuses %s, which the README's Refused at load table has no row for", c.Desc, k)
		}
	}
	for _, r := range rowKeys {
		covered := false
		for _, k := range named {
			covered = covered || k == r || strings.HasPrefix(k, r+".")
		}
		if !covered {
			t.Errorf("the README's Refused at load table has a row for %s, which no refused configuration shows", r)
		}
	}
}

// TestREADMERedisPermissions holds the README's table of Redis deployments to the ACL
// permissions the tests run each as (conformance.RunRedis, RunRedisCluster,
// RunRedisSentinel): a user given what the README says can do all the store does.
func TestREADMERedisPermissions(t *testing.T) {
	text := readmeSection(t, "## Redis: several Traefik replicas")
	for deployment, perms := range map[string]string{
		"| one server, no TLS |": conformance.ACLPermissions,
		"| Redis Cluster, self-": conformance.ClusterACLPermissions,
		"| Sentinel |":           conformance.SentinelACLPermissions,
	} {
		i := strings.Index(text, deployment)
		if i < 0 {
			t.Errorf("the README's Redis table has no row %q", deployment)
			continue
		}
		row, _, _ := strings.Cut(text[i:], "\n")
		if want := "`" + strings.ReplaceAll(perms, "|", `\|`) + "`"; !strings.Contains(row, want) {
			t.Errorf("the README's row %q does not give %s:\n%s", deployment, want, row)
		}
	}
}

//go:build !yaegi
// +build !yaegi

package zegocallback

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEOptionsTable holds the README's options table against Config and
// CreateConfig: every key of the configuration has a row, every row names a key, and the
// default a row gives is CreateConfig's. Traefik matches keys without regard to case.
func TestREADMEOptionsTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n### Options\n")
	if start < 0 {
		t.Fatal("the README has no ### Options section")
	}
	text = text[start:]
	if end := strings.Index(text[1:], "\n#"); end >= 0 {
		text = text[:end+1]
	}
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
// it is, an empty list "empty".
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
		case reflect.Slice:
			out[name] = "empty"
			if f.Len() > 0 {
				out[name] = fmt.Sprint(f.Interface())
			}
		default:
			out[name] = fmt.Sprintf("`%v`", f.Interface())
		}
	}
}

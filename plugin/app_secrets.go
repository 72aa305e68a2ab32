package zegocallback

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Each ZEGO project (AppID) has its own CallbackSecret. With appSecrets or appSecretsFile,
// a callback is checked against the secrets of the app id its body names (any spelling
// the middleware reads, a string or a number), and against the secrets option's, which
// stay accepted for every app (a migration); a secret of one app does not sign another's
// callbacks. The table maps each app id's text to its secrets: one lookup per callback.

// compileAppSecrets checks appSecrets and reads appSecretsFile into s. Each error names
// the key and says what to write; none holds a secret.
func compileAppSecrets(s *settings, c *Config, nowMs int64) error {
	inline, err := appSecretsTable(c.AppSecrets)
	if err != nil {
		return err
	}
	if err := secretsOfOneKind(inline, s.secrets); err != nil {
		return fmt.Errorf("appSecrets: %w", err)
	}
	// Each app's list ends with the secrets option's (for every app), unless they are a
	// file's, which appSecretsInFiles adds as it holds them then.
	var everyApp []string
	if s.secretsFile == nil {
		everyApp = s.secrets
	}
	if len(inline) > 0 {
		s.appSecrets = extendApps(inline, everyApp)
	}
	if c.AppSecretsFile != "" {
		parse := func(data []byte) (map[string][]string, error) {
			fromFile, err := appSecretLines(data)
			if err != nil {
				return nil, err
			}
			merged, err := mergeAppSecrets(inline, fromFile)
			if err != nil {
				return nil, err
			}
			// Checked at each reading, as at load: a rewrite may list a secret of secrets.
			if err := secretsOfOneKind(merged, s.secrets); err != nil {
				return nil, err
			}
			return extendApps(merged, everyApp), nil
		}
		w, err := watchTable("appSecretsFile", c.AppSecretsFile, parse, s.log, nowMs)
		if err != nil {
			return fmt.Errorf("appSecretsFile: %w", err)
		}
		s.appSecretsFile = w
		s.appSecrets = watchedTable(w, nowMs)
	}
	return nil
}

// appTableNow is the table of each app's secrets in force (nil without appSecrets).
func appTableNow(s *settings, nowMs int64) map[string][]string {
	if s.appSecretsFile != nil {
		return watchedTable(s.appSecretsFile, nowMs)
	}
	return s.appSecrets
}

// secretsOfOneKind refuses a secret of an app's that the secrets option also lists: it
// would sign every app's callbacks.
func secretsOfOneKind(table map[string][]string, everyApp []string) error {
	for app, list := range table {
		for _, secret := range list {
			for _, all := range everyApp {
				if secret == all {
					return fmt.Errorf("a secret of app %s is also in secrets, which accepts it for every app; keep it in one of them", app)
				}
			}
		}
	}
	return nil
}

// extendApps is table with everyApp after each app's secrets, in lists of their own.
func extendApps(table map[string][]string, everyApp []string) map[string][]string {
	out := make(map[string][]string, len(table))
	for app, list := range table {
		out[app] = append(append(make([]string, 0, len(list)+len(everyApp)), list...), everyApp...)
	}
	return out
}

// appSecretsTable checks the appSecrets option: app ids in digits (a YAML number reaches
// the plugin through Traefik's decoder as the text "<int Value>"), each with secrets.
func appSecretsTable(in map[string][]string) (map[string][]string, error) {
	out := make(map[string][]string, len(in))
	apps := make([]string, 0, len(in))
	for app := range in {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	for _, app := range apps {
		id := strings.TrimSpace(app)
		if err := checkAppID(id); err != nil {
			return nil, fmt.Errorf("appSecrets: %w", err)
		}
		if len(in[app]) == 0 {
			return nil, fmt.Errorf("appSecrets: app %s lists no secret", id)
		}
		for i, secret := range in[app] {
			secret = strings.TrimSpace(secret)
			if err := checkSecret(secret); err != nil {
				return nil, fmt.Errorf("appSecrets: app %s, item %d: %w; give each secret as its own list item", id, i, err)
			}
			out[id] = append(out[id], secret)
		}
	}
	merged, err := mergeAppSecrets(out, nil)
	if err != nil {
		return nil, fmt.Errorf("appSecrets: %w", err)
	}
	return merged, nil
}

// checkAppID accepts a ZEGO AppID as the console shows it: up to 10 digits (a 32-bit
// number), no leading 0, so that every backend reads the text looked up as the same
// number. Its error never shows what it refuses: a line written secret first would put
// the secret in the log.
func checkAppID(id string) error {
	if strings.HasPrefix(id, "<") && strings.HasSuffix(id, " Value>") && len(id) < 32 {
		return fmt.Errorf("an app id written as a number in YAML reaches the plugin as %q: quote it (\"1234567\": [secret])", id)
	}
	if id == "" || strings.Trim(id, digits) != "" || len(id) > 10 || id[0] == '0' {
		return errors.New("an app id is not a ZEGO AppID: its digits as the console shows them, up to 10, no leading 0 (the value is not shown: it could be a secret)")
	}
	return nil
}

// appSecretLines reads an appSecretsFile: one "appid secret" pair per line, white space
// between and around them; blank lines and lines starting with '#' ignored. Its errors
// name a line, never its secret.
func appSecretLines(data []byte) (map[string][]string, error) {
	out := map[string][]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Fields(line)
		if len(parts) != 2 {
			return nil, fmt.Errorf("line %d holds %d words; write one app id and one secret per line", i+1, len(parts))
		}
		if err := checkAppID(parts[0]); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if err := checkSecret(parts[1]); err != nil {
			return nil, fmt.Errorf("line %d: its secret %w", i+1, err)
		}
		out[parts[0]] = append(out[parts[0]], parts[1])
	}
	if len(out) == 0 {
		return nil, errors.New("holds no app id and secret (one pair per line; blank and # lines are skipped)")
	}
	return out, nil
}

// mergeAppSecrets joins two tables, and refuses a secret listed for two app ids: either
// app's callbacks would pass with it.
func mergeAppSecrets(a, b map[string][]string) (map[string][]string, error) {
	out := make(map[string][]string, len(a)+len(b))
	owner := map[string]string{}
	for _, table := range []map[string][]string{a, b} {
		apps := make([]string, 0, len(table))
		for app := range table {
			apps = append(apps, app)
		}
		sort.Strings(apps)
		for _, app := range apps {
			for _, secret := range table[app] {
				if other, seen := owner[secret]; seen && other != app {
					return nil, fmt.Errorf("a secret is listed for app %s and for app %s; each app has its own", other, app)
				}
				owner[secret] = app
				out[app] = append(out[app], secret)
			}
		}
	}
	return out, nil
}

// appSecretsOf is the secrets a callback is checked against with appSecrets: those of
// the app id its body names, then the secrets option's, accepted for every app; the
// secrets option's alone for an app id without an entry. The tables hold each app's
// secrets with the secrets option's after them (extendApps), so that a table's callback
// costs one lookup; the files' are read here.
func appSecretsOf(m *middleware, cb *callback) []string {
	if m.appSecretsFile != nil || m.everyAppFile != nil {
		return appSecretsInFiles(m, cb)
	}
	if list, listed := m.appSecrets[cb.texts[fieldAppID]]; listed {
		return list
	}
	return m.secrets
}

// appSecretsInFiles is appSecretsOf with appSecretsFile or secretsFile.
func appSecretsInFiles(m *middleware, cb *callback) []string {
	table := m.appSecrets
	if m.appSecretsFile != nil {
		table = watchedTable(m.appSecretsFile, cb.receivedMs)
	}
	list, listed := table[cb.texts[fieldAppID]]
	if m.everyAppFile == nil {
		if !listed {
			return m.secrets
		}
		return list
	}
	// The table's lists hold only their app's secrets: secretsFile's follow.
	everyApp := watchedValue(m.everyAppFile, cb.receivedMs)
	return append(append(make([]string, 0, len(list)+len(everyApp)), list...), everyApp...)
}

// appSignatureError is signatureError for a middleware with appSecrets, whose log line
// says when the app id is the reason.
func appSignatureError(m *middleware, cb *callback) error {
	err := signatureError(cb)
	if err != errInvalidSignature {
		return err
	}
	table := m.appSecrets
	if m.appSecretsFile != nil {
		table = watchedTable(m.appSecretsFile, cb.receivedMs)
	}
	app := cb.texts[fieldAppID]
	switch {
	case app == "":
		return errNoAppID
	case table[app] == nil:
		return fmt.Errorf("%w: app id %q has no entry in appSecrets or appSecretsFile", errInvalidSignature, logValue(app))
	}
	return fmt.Errorf("%w: no secret of app id %s (nor of secrets) yields it", errInvalidSignature, app)
}

// errNoAppID is a callback that names no app id on a middleware with appSecrets.
var errNoAppID = fmt.Errorf("%w: the callback names no app id, and appSecrets binds each secret to one", errInvalidSignature)

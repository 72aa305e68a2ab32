package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The apps of the appSecrets rows: app A (111111, the templates' app id) signs with
// zegotest.Secret, app B (222222) with zegotest.OtherSecret.
const (
	appA = "111111"
	appB = "222222"
)

// appSecretsOnly binds each app to its secret, with no secret for every app.
var appSecretsOnly = map[string]any{
	"secrets":    []string{},
	"appSecrets": map[string]any{appA: []string{zegotest.Secret}, appB: []string{zegotest.OtherSecret}},
}

// stepAppSecretCases: step 6 with appSecrets, each app's callbacks under its own secret
// only: a callback of app A signed with app B's secret is forged, whatever its app id's
// spelling or type, as is one that names no app id or an app without an entry. secrets
// stays accepted for every app (a migration).
func stepAppSecretCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	signed := func(template, secret string) []byte {
		return zegotest.Fill(template, secret, sec, zegotest.Nonce())
	}
	const (
		rtcString = `{"appid":"{{app}}","event":"mix_start","nonce":"{{nonce}}","signature":"{{signature}}","timestamp":"{{timestamp}}"}`
		agentNum  = `{"AppId":{{app}},"Event":"AgentSpeakAction","Nonce":"{{nonce}}","Signature":"{{signature}}","Timestamp":{{timestamp}}}`
		noApp     = `{"event":"mix_start","nonce":"{{nonce}}","signature":"{{signature}}","timestamp":"{{timestamp}}"}`
	)
	app := func(template, id string) string { return replaceApp(template, id) }
	migration := map[string]any{"secrets": []string{zegotest.OtherSecret}, "appSecrets": map[string]any{appA: []string{zegotest.Secret}}}
	return []Case{
		{Desc: "6 appSecrets: app A's callback signed with app B's secret: 401", Config: appSecretsOnly,
			Steps: []Step{withBody(rejected(401, "invalid_signature"), signed(app(rtcString, appA), zegotest.OtherSecret))}},
		{Desc: "6 appSecrets: app A's callback signed with its own: forwarded", Config: appSecretsOnly,
			Steps: []Step{{Req: Request{Body: signed(app(rtcString, appA), zegotest.Secret)}, Status: 200, Forwarded: true,
				Got: map[string][]string{"X-Zego-Appid": {appA}}}}},
		{Desc: "6 appSecrets: app B's, its app id a number (AppId): forwarded", Config: appSecretsOnly,
			Steps: []Step{{Req: Request{Body: signed(app(agentNum, appB), zegotest.OtherSecret)}, Status: 200, Forwarded: true,
				Got: map[string][]string{"X-Zego-App-Id": {appB}}}}},
		{Desc: "6 appSecrets: app B's number signed with app A's secret: 401", Config: appSecretsOnly,
			Steps: []Step{withBody(rejected(401, "invalid_signature"), signed(app(agentNum, appB), zegotest.Secret))}},
		{Desc: "6 appSecrets: a callback that names no app id: 401", Config: appSecretsOnly,
			Steps: []Step{withBody(rejected(401, "invalid_signature"), signed(noApp, zegotest.Secret))}},
		{Desc: "6 appSecrets: an app id without an entry: 401", Config: appSecretsOnly,
			Steps: []Step{withBody(rejected(401, "invalid_signature"), signed(app(rtcString, "333333"), zegotest.Secret))}},
		{Desc: "6 appSecrets with secrets: secrets signs every app's", Config: migration,
			Steps: []Step{
				{Req: Request{Body: signed(app(rtcString, "333333"), zegotest.OtherSecret)}, Status: 200, Forwarded: true},
				{Req: Request{Body: signed(app(rtcString, appA), zegotest.Secret)}, Status: 200, Forwarded: true},
				withBody(rejected(401, "invalid_signature"), signed(app(rtcString, "333333"), zegotest.Secret)),
			}},
	}
}

// replaceApp puts id in place of {{app}}.
func replaceApp(template, id string) string { return strings.ReplaceAll(template, "{{app}}", id) }

// runAppSecretsFile gives the middleware an appSecretsFile holding app A's secret, then
// rewrites it with another: callbacks signed with the new secret pass within a few
// seconds, and then those signed with the old one are refused.
func runAppSecretsFile(t *testing.T, e *Env) {
	path := filepath.Join(t.TempDir(), "app-secrets")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil { // as a Secret volume swaps it
			t.Fatal(err)
		}
	}
	write("# app id, then its secret\n" + appA + " " + zegotest.Secret + "\n")
	e.Reload(t, 0, map[string]any{"secrets": []string{}, "appSecretsFile": path})
	// Back to the base configuration before the file goes with the test's folder: a
	// Traefik reloaded later would otherwise stop serving this route.
	t.Cleanup(func() { e.Reload(t, 0, nil) })
	fresh := func(secret string) []byte {
		return zegotest.Fill(replaceApp(`{"appid":"{{app}}","event":"mix_start","nonce":"{{nonce}}","signature":"{{signature}}","timestamp":"{{timestamp}}"}`, appA),
			secret, zegotest.Seconds(time.Now()), zegotest.Nonce())
	}
	CheckStep(t, "app A, its secret in the file", e.Srv[0], Delivered(fresh(zegotest.Secret)))
	CheckStep(t, "app A, another secret", e.Srv[0], withBody(rejected(401, "invalid_signature"), fresh(zegotest.OtherSecret)))
	write(appA + "\t" + zegotest.OtherSecret + "\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := e.Srv[0].Do(t, Request{Body: fresh(zegotest.OtherSecret)})
		if resp.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rewritten appSecretsFile was not taken within 10 s (status %d)", resp.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	CheckStep(t, "app A, the old secret after the rotation", e.Srv[0], withBody(rejected(401, "invalid_signature"), fresh(zegotest.Secret)))
}

// runAppSecretCombos: appSecrets with secretsFile, appSecretsFile with secrets and with
// secretsFile (each app's own secret, another's, an unlisted app, no app id, a secret for
// every app), then a rotation of secretsFile under appSecretsFile. The second reader's
// flow.
func runAppSecretCombos(t *testing.T, e *Env) {
	dir := t.TempDir()
	sf := filepath.Join(dir, "secrets")
	af := filepath.Join(dir, "apps")
	const every = "99887766554433221100ffeeddccbbaa"
	const every2 = "a9887766554433221100ffeeddccbbaa"
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write(sf, every+"\n")
	write(af, appB+" "+zegotest.OtherSecret+"\r\n")
	body := func(app, secret string) []byte {
		return zegotest.Fill(replaceApp(`{"appid":"{{app}}","event":"mix_start","nonce":"{{nonce}}","signature":"{{signature}}","timestamp":"{{timestamp}}"}`, app),
			secret, zegotest.Seconds(time.Now()), zegotest.Nonce())
	}
	configs := []map[string]any{
		{"secrets": []string{}, "appSecrets": map[string]any{appA: []string{zegotest.Secret}, appB: []string{zegotest.OtherSecret}}, "secretsFile": sf},
		{"secrets": []string{every}, "appSecrets": map[string]any{appA: []string{zegotest.Secret}}, "appSecretsFile": af},
		{"secrets": []string{}, "appSecrets": map[string]any{appA: []string{zegotest.Secret}}, "appSecretsFile": af, "secretsFile": sf},
	}
	t.Cleanup(func() { e.Reload(t, 0, nil) }) // before the files go: see runAppSecretsFile
	for ci, cfg := range configs {
		e.Reload(t, 0, cfg)
		for _, tt := range []struct {
			app, secret string
			ok          bool
		}{
			{appA, zegotest.Secret, true}, {appA, zegotest.OtherSecret, false}, {appB, zegotest.Secret, false},
			{appB, zegotest.OtherSecret, true}, {"333333", every, true}, {appA, every, true}, {"333333", zegotest.Secret, false},
			{"", every, true}, {"", zegotest.Secret, false},
		} {
			label := fmt.Sprintf("config %d app %q", ci, tt.app)
			if tt.ok {
				CheckStep(t, label, e.Srv[0], Delivered(body(tt.app, tt.secret)))
			} else {
				CheckStep(t, label, e.Srv[0], withBody(rejected(401, "invalid_signature"), body(tt.app, tt.secret)))
			}
		}
	}
	// secretsFile rotates under appSecretsFile (config 2 in force).
	write(sf, every2+"\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp := e.Srv[0].Do(t, Request{Body: body(appA, every2)}); resp.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated secretsFile was not taken")
		}
		time.Sleep(100 * time.Millisecond)
	}
	CheckStep(t, "old every-app secret after rotation", e.Srv[0], withBody(rejected(401, "invalid_signature"), body(appA, every)))
	CheckStep(t, "app B still", e.Srv[0], Delivered(body(appB, zegotest.OtherSecret)))
}

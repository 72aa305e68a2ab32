package conformance

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// RedisStore is the StoreConfig of a Redis store at addr: each middleware name gets its
// own key prefix.
func RedisStore(addr, password string) StoreConfig {
	return func(name string) map[string]any {
		return map[string]any{"nonceStore": "redis", "redis": RedisSettings(addr, password, name)}
	}
}

// RedisSettings is a middleware's redis section: the server, the password, a key prefix
// of its own, and a timeout short enough for outage tests.
func RedisSettings(addr, password, name string) map[string]any {
	prefix := "zc-" + strings.NewReplacer("@", "-", " ", "-").Replace(name) + ":"
	return map[string]any{"address": addr, "password": password, "keyPrefix": prefix, "timeout": "300ms"}
}

// RunRedisOutage stops the Redis server under two middlewares, one failing closed (503)
// and one failing open (forwarded), then starts it again: the next callbacks pass,
// without building the middleware again. A wrong password answers 503 too.
func RunRedisOutage(t *testing.T, build Builder, srv *redistest.Server, password string) {
	closedName, openName := UniqueName("closed"), UniqueName("open")
	closed := Start(t, build, merge(BaseConfig(), RedisStore(srv.Addr, password)(closedName)), closedName)
	openCfg := RedisStore(srv.Addr, password)(openName)
	openCfg["redis"].(map[string]any)["failOpen"] = true
	open := Start(t, build, merge(BaseConfig(), openCfg), openName)
	fresh := func() []byte {
		return zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	}

	CheckStep(t, "Redis up", closed, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true})
	srv.Stop()
	CheckStep(t, "Redis down, failing closed", closed, Step{Req: Request{Body: fresh()}, Status: http.StatusServiceUnavailable, Code: "nonce_store_unavailable"})
	CheckStep(t, "Redis down, failing open", open, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true,
		Got: map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"mix_start"}}})
	srv.Restart()
	CheckStep(t, "Redis back, failing closed", closed, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true})
	CheckStep(t, "Redis back, failing open", open, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true})
	replayed := fresh()
	CheckStep(t, "Redis back: a delivery", closed, Step{Req: Request{Body: replayed}, Status: http.StatusOK, Forwarded: true})
	CheckStep(t, "Redis back: its replay", closed, Step{Req: Request{Body: replayed}, Status: http.StatusOK,
		RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})

	if password != "" {
		wrongName := UniqueName("wrongpass")
		wrong := Start(t, build, merge(BaseConfig(), RedisStore(srv.Addr, password+"-wrong")(wrongName)), wrongName)
		CheckStep(t, "wrong password", wrong, Step{Req: Request{Body: fresh()}, Status: http.StatusServiceUnavailable, Code: "nonce_store_unavailable"})
	}
}

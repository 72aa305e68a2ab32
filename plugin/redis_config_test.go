package zegocallback

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeRedisTestFile writes content to a file in a temporary directory of the test.
func writeRedisTestFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// compileRedisNow is compileRedis as New calls it, now.
func compileRedisNow(c RedisConfig) (*redisSettings, error) {
	return compileRedis(c, newLineLimiter("redis-test"), time.Now().UnixMilli())
}

func TestDefaultRedisConfig(t *testing.T) {
	s, err := compileRedisNow(defaultRedisConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s.address != "127.0.0.1:6379" || s.timeout != 500*time.Millisecond || s.keyPrefix != "zego-callback:" ||
		s.tls != nil || s.failOpen || len(handshakeOf(s)) != 0 {
		t.Fatalf("compiled defaults: %+v", s)
	}
}

func TestCompileRedis(t *testing.T) {
	c := defaultRedisConfig()
	c.Address = " redis.internal:6380 "
	c.Username = "zego"
	c.PasswordFile = writeRedisTestFile(t, "pw", "\t from-file \r\nnot this\n")
	c.DB = 2
	c.Timeout = "2s"
	c.FailOpen = true
	s, err := compileRedisNow(c)
	if err != nil {
		t.Fatal(err)
	}
	want := string(appendRedisCommand(appendRedisCommand(nil, "AUTH", "zego", "from-file"), "SELECT", "2"))
	if handshake, names := redisHandshake(s); string(handshake) != want || strings.Join(names, ",") != "AUTH,SELECT" {
		t.Fatalf("handshake %q %v, want %q", handshake, names, want)
	}
	if s.address != "redis.internal:6380" || s.timeout != 2*time.Second || !s.failOpen {
		t.Fatalf("settings: %+v", s)
	}

	c = defaultRedisConfig()
	c.Password = "only-pw"
	c.TLS = true
	c.Address = "redis.internal:6379"
	if s, err = compileRedisNow(c); err != nil {
		t.Fatal(err)
	}
	if handshake := handshakeOf(s); handshake != string(appendRedisCommand(nil, "AUTH", "only-pw")) {
		t.Fatalf("handshake %q", handshake)
	}
	if s.tls == nil || s.tls.ServerName != "redis.internal" || s.tls.InsecureSkipVerify || s.tls.RootCAs != nil || s.tls.MinVersion < 0x0303 {
		t.Fatalf("tls config: %+v", s.tls)
	}

	// A URL gives each part as its option would.
	for _, tc := range []struct {
		address, hostPort, handshake string
		tls                          bool
	}{
		{"redis://redis.internal", "redis.internal:6379", "", false},
		{"rediss://zego:p%40ss@redis.internal:6380/3", "redis.internal:6380", string(appendRedisCommand(appendRedisCommand(nil, "AUTH", "zego", "p@ss"), "SELECT", "3")), true},
		{"redis://:only@[::1]:7000/", "[::1]:7000", string(appendRedisCommand(nil, "AUTH", "only")), false},
	} {
		c = defaultRedisConfig()
		c.Address = tc.address
		if s, err = compileRedisNow(c); err != nil {
			t.Fatalf("%s: %v", tc.address, err)
		}
		if s.address != tc.hostPort || handshakeOf(s) != tc.handshake || (s.tls != nil) != tc.tls {
			t.Errorf("%s: address %q, handshake %q, TLS %v", tc.address, s.address, handshakeOf(s), s.tls != nil)
		}
	}

	// Nothing listens there: compileRedis does not connect.
	c = defaultRedisConfig()
	c.Address = "127.0.0.1:1"
	if _, err := compileRedisNow(c); err != nil {
		t.Fatal(err)
	}
}

func TestCompileRedisErrors(t *testing.T) {
	const password = "pw-in-no-error-9q"
	empty := writeRedisTestFile(t, "empty", "\n\nsecond-line-is-not-read\n")
	notPEM := writeRedisTestFile(t, "ca.pem", password)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		desc string
		edit func(*RedisConfig)
		want string
	}{
		{"timeout without unit", func(c *RedisConfig) { c.Timeout = "5" }, `redis.timeout: "5" is not a duration`},
		{"empty timeout", func(c *RedisConfig) { c.Timeout = "" }, `redis.timeout: "" is not a duration`},
		{"zero timeout", func(c *RedisConfig) { c.Timeout = "0s" }, `redis.timeout: "0s" is not positive`},
		{"negative timeout", func(c *RedisConfig) { c.Timeout = "-1s" }, `redis.timeout: "-1s" is not positive`},
		{"timeout past its bound", func(c *RedisConfig) { c.Timeout = "1h" }, `redis.timeout: "1h" is not between 1ms and 10s`},
		{"empty address", func(c *RedisConfig) { c.Address = " " }, "redis.address: empty"},
		{"address without port", func(c *RedisConfig) { c.Address = "127.0.0.1" }, `redis.address: "127.0.0.1" is not host:port`},
		{"a password after a comma", func(c *RedisConfig) { c.Address = "redis.internal:6379,password=" + password }, "redis.address: (not shown)"},
		{"a password after a space", func(c *RedisConfig) { c.Address = "redis.internal:6379 " + password }, "redis.address: (not shown)"},
		{"a password in the query", func(c *RedisConfig) { c.Address = "redis://redis.internal:6379/0?password=" + password }, "redis.address: a URL with a query"},
		{"a URL whose host is cut by #", func(c *RedisConfig) { c.Address = "redis://zego:" + password[:4] + "#" + password[4:] }, "redis.address: "},
		{"address without host", func(c *RedisConfig) { c.Address = ":6379" }, `redis.address: ":6379" has no host`},
		{"empty port", func(c *RedisConfig) { c.Address = "redis:" }, `redis.address: "redis:" has no port number`},
		{"port zero", func(c *RedisConfig) { c.Address = "redis:0" }, `redis.address: "redis:0" has no port number`},
		{"port too large", func(c *RedisConfig) { c.Address = "redis:65536" }, `redis.address: "redis:65536" has no port number`},
		{"port by name", func(c *RedisConfig) { c.Address = "redis:redis" }, `redis.address: "redis:redis" has no port number`},
		{"negative db", func(c *RedisConfig) { c.DB = -1 }, "redis.db: -1 is negative"},
		{"missing password file", func(c *RedisConfig) { c.Password = ""; c.PasswordFile = missing }, "redis.passwordFile: stat " + missing},
		{"empty password file", func(c *RedisConfig) { c.Password = ""; c.PasswordFile = empty }, "redis.passwordFile: holds no password"},
		{"password and password file", func(c *RedisConfig) { c.Password = password; c.PasswordFile = empty }, "redis.passwordFile: set together with a password"},
		{"missing CA file", func(c *RedisConfig) { c.TLS = true; c.TLSCAFile = missing }, "redis.tlsCAFile: open " + missing},
		{"CA file without PEM", func(c *RedisConfig) { c.TLS = true; c.TLSCAFile = notPEM }, "redis.tlsCAFile: " + `"` + notPEM + `" holds no PEM certificate`},
		{"CA file without TLS", func(c *RedisConfig) { c.TLSCAFile = notPEM }, "redis.tlsSkipVerify, redis.tlsCAFile, redis.tlsCertFile or redis.tlsKeyFile is set without TLS"},
		{"client certificate without TLS", func(c *RedisConfig) { c.TLSCertFile, c.TLSKeyFile = notPEM, notPEM }, "redis.tlsSkipVerify, redis.tlsCAFile, redis.tlsCertFile or redis.tlsKeyFile is set without TLS"},
		{"client certificate without its key", func(c *RedisConfig) { c.TLS = true; c.TLSCertFile = notPEM }, "redis.tlsCertFile and redis.tlsKeyFile: set both"},
		{"client certificate not PEM", func(c *RedisConfig) { c.TLS = true; c.TLSCertFile, c.TLSKeyFile = notPEM, notPEM }, "redis.tlsCertFile: holds no PEM block"},
		{"skip verify without TLS", func(c *RedisConfig) { c.TLSSkipVerify = true }, "redis.tlsSkipVerify, redis.tlsCAFile, redis.tlsCertFile or redis.tlsKeyFile is set without TLS"},
		{"user and password in a bare address", func(c *RedisConfig) { c.Address = "u:" + password + "@redis:6379" }, "redis.address: holds a user or password"},
		{"URL that does not parse", func(c *RedisConfig) { c.Address = "redis://u:" + password + "@redis:port" }, "redis.address: not a URL"},
		{"URL with another scheme", func(c *RedisConfig) { c.Address = "http://u:" + password + "@redis" }, "redis.address: a URL whose scheme"},
		{"URL password cut by #", func(c *RedisConfig) { c.Address = "redis://u:" + password + "#x@redis" }, "redis.address:"},
		{"URL with a query", func(c *RedisConfig) { c.Address = "redis://redis?db=2" }, "redis.address: a URL with a query"},
		{"URL with a path that is no db", func(c *RedisConfig) { c.Address = "redis://redis/zero" }, "redis.address: a URL whose path"},
		{"URL password and password", func(c *RedisConfig) { c.Address = "redis://:" + password + "@redis" }, "redis.password: set together with a password in redis.address"},
		{"URL user and username", func(c *RedisConfig) { c.Address = "redis://zego@redis"; c.Username = "other" }, "redis.username: set together with a user"},
		{"URL db and db", func(c *RedisConfig) { c.Address = "redis://redis/1"; c.DB = 2 }, "redis.db: set together with a database"},
		{"URL and tls", func(c *RedisConfig) { c.Address = "rediss://redis"; c.TLS = true }, "redis.tls: set together with a URL"},
		{"empty key prefix", func(c *RedisConfig) { c.KeyPrefix = "" }, "redis.keyPrefix: empty"},
		{"key prefix with a space", func(c *RedisConfig) { c.KeyPrefix = "zego callback:" }, `redis.keyPrefix: "zego callback:" holds white space`},
		{"key prefix with a control", func(c *RedisConfig) { c.KeyPrefix = "zego\x00" }, `redis.keyPrefix: "zego\x00" holds white space or a control character`},
		{"sentinels without a master name", func(c *RedisConfig) { c.Sentinels = []string{"s:26379"} }, "redis.masterName: empty"},
		{"a master name without sentinels", func(c *RedisConfig) { c.MasterName = "zego" }, "redis.masterName or redis.sentinel*: set without redis.sentinels"},
		{"a sentinel password without sentinels", func(c *RedisConfig) { c.SentinelPassword = password }, "redis.masterName or redis.sentinel*: set without redis.sentinels"},
		{"sentinels and an address", func(c *RedisConfig) { c.Sentinels, c.MasterName, c.Address = []string{"s:26379"}, "zego", "redis:6379" }, "redis.address: set together with redis.sentinels"},
		{"sentinels and a URL", func(c *RedisConfig) {
			c.Sentinels, c.MasterName, c.Address = []string{"s:26379"}, "zego", "redis://:"+password+"@redis:6379"
		}, "redis.address: set together with redis.sentinels"},
		{"a sentinel without port", func(c *RedisConfig) { c.Sentinels, c.MasterName = []string{"s:26379", "s2"}, "zego" }, `redis.sentinels[1]: "s2" is not host:port`},
		{"a sentinel with a password in it", func(c *RedisConfig) {
			c.Sentinels, c.MasterName = []string{"s:26379,password=" + password}, "zego"
		}, "redis.sentinels[0]: (not shown)"},
		{"a sentinel port past 65535", func(c *RedisConfig) { c.Sentinels, c.MasterName = []string{"s:99999"}, "zego" }, `redis.sentinels[0]: "s:99999" has no port`},
		{"too many sentinels", func(c *RedisConfig) { c.Sentinels, c.MasterName = make([]string, 17), "zego" }, "redis.sentinels: 17 addresses; at most 16"},
		{"a master name with a space", func(c *RedisConfig) { c.Sentinels, c.MasterName = []string{"s:26379"}, "my primary" }, `redis.masterName: "my primary" holds white space`},
		{"sentinel password and its file", func(c *RedisConfig) {
			c.Sentinels, c.MasterName, c.SentinelPassword, c.SentinelPasswordFile = []string{"s:26379"}, "zego", password, empty
		}, "redis.sentinelPasswordFile: set together with redis.sentinelPassword"},
		{"an empty sentinel password file", func(c *RedisConfig) {
			c.Sentinels, c.MasterName, c.SentinelPasswordFile = []string{"s:26379"}, "zego", empty
		}, "redis.sentinelPasswordFile: holds no password"},
		{"negative waitReplicas", func(c *RedisConfig) { c.WaitReplicas = -1 }, "redis.waitReplicas: -1 is not between 0 and 16"},
		{"waitReplicas past its bound", func(c *RedisConfig) { c.WaitReplicas = 17 }, "redis.waitReplicas: 17 is not between 0 and 16"},
		{"a TLS server name without TLS", func(c *RedisConfig) { c.TLSServerName = "redis.internal" }, "redis.tlsServerName: set without TLS"},
		{"a TLS server name with a port", func(c *RedisConfig) { c.TLS, c.TLSServerName = true, "redis.internal:6379" }, `redis.tlsServerName: "redis.internal:6379" is not a host name`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := defaultRedisConfig()
			c.Password = password
			tc.edit(&c)
			s, err := compileRedisNow(c)
			if err == nil {
				t.Fatalf("no error; settings %+v", s)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to start with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error %q holds the password", err)
			}
		})
	}
}

// handshakeOf is the handshake a new connection sends, as text.
func handshakeOf(s *redisSettings) string {
	handshake, _ := redisHandshake(s)
	return string(handshake)
}

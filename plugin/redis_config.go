package zegocallback

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// RedisConfig is the redis section of the configuration: where the replay store shared
// by several Traefik replicas lives. Redis and Valkey speak the same protocol; either
// works. Traefik matches keys to field names without regard to case.
type RedisConfig struct {
	// Address is the server's host:port. Default "127.0.0.1:6379".
	Address string
	// Username is the ACL user that AUTH names; empty sends AUTH with the password
	// only (the default user). Default "".
	Username string
	// Password is sent with AUTH when it or Username is set. Prefer PasswordFile: Traefik
	// logs the dynamic configuration in clear at DEBUG level. Default "".
	Password string
	// PasswordFile names a file whose first line (white space trimmed) is the password,
	// read by New: for Docker and Kubernetes secret mounts. Not with Password. Default "".
	PasswordFile string
	// DB is the database SELECTed on each connection. Default 0.
	DB int
	// TLS connects with TLS (at least TLS 1.2), checking the server's certificate
	// against the system's roots or TLSCAFile, for the host of Address. Default false.
	TLS bool
	// TLSSkipVerify accepts any server certificate: for tests only. Default false.
	TLSSkipVerify bool
	// TLSCAFile names a PEM bundle of the CAs that may sign the server's certificate,
	// instead of the system's roots. Default "".
	TLSCAFile string
	// Timeout bounds each step with Redis: the dial and handshake, each command's write
	// and read, and the wait for a free connection, as a Go duration. Default "500ms".
	Timeout string
	// KeyPrefix starts every key the store writes. Default "zego-callback:".
	KeyPrefix string
	// FailOpen says what a callback gets when Redis cannot answer: false refuses it
	// with 503 nonce_store_unavailable (ZEGO retries); true forwards it unchecked for
	// replays and logs why. Default false.
	FailOpen bool
}

// defaultRedisConfig returns the redis section's defaults.
func defaultRedisConfig() RedisConfig {
	return RedisConfig{
		Address:   "127.0.0.1:6379",
		Timeout:   "500ms",
		KeyPrefix: "zego-callback:",
	}
}

// redisSettings is a RedisConfig checked and turned into what connections and
// requests need. It is read-only once built.
type redisSettings struct {
	address   string
	username  string
	password  string
	db        int
	timeout   time.Duration
	tls       *tls.Config // nil for a plain connection
	keyPrefix string
	failOpen  bool
	// handshake is AUTH and SELECT, encoded once and sent on every new connection in
	// one write; handshakeNames names each command, in order, for errors.
	handshake      []byte
	handshakeNames []string
	// poolKey tells apart the settings that need a pool of their own (see
	// sharedRedisPool). It holds the password: it never leaves memory.
	poolKey string
}

// compileRedis checks c and builds the settings. Each error names the key and the bad
// value, never the password. It reads PasswordFile and TLSCAFile but does not connect:
// Redis may come up after Traefik, and a wrong password or an unreachable server shows
// on the requests, as 503 (or forwarding with FailOpen) with a log line that says why.
func compileRedis(c RedisConfig) (*redisSettings, error) {
	s := &redisSettings{username: c.Username, db: c.DB, keyPrefix: c.KeyPrefix, failOpen: c.FailOpen}

	address := strings.TrimSpace(c.Address)
	if address == "" {
		return nil, errors.New("redis.address: empty; want host:port")
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("redis.address: %q is not host:port", c.Address)
	}
	if host == "" {
		return nil, fmt.Errorf("redis.address: %q has no host", c.Address)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("redis.address: %q has no port number from 1 to 65535", c.Address)
	}
	s.address = address

	s.password = c.Password
	if c.PasswordFile != "" {
		if c.Password != "" {
			return nil, errors.New("redis.passwordFile: set together with redis.password; set one")
		}
		data, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("redis.passwordFile: %w", err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		s.password = strings.TrimSpace(line)
		if s.password == "" {
			return nil, fmt.Errorf("redis.passwordFile: %q holds no password on its first line", c.PasswordFile)
		}
	}

	if c.DB < 0 {
		return nil, fmt.Errorf("redis.db: %d is negative", c.DB)
	}

	timeout, err := time.ParseDuration(strings.TrimSpace(c.Timeout))
	if err != nil {
		return nil, fmt.Errorf("redis.timeout: %q is not a duration such as 500ms or 2s", c.Timeout)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("redis.timeout: %q is not positive", c.Timeout)
	}
	s.timeout = timeout

	if c.KeyPrefix == "" {
		return nil, errors.New("redis.keyPrefix: empty; the store's keys would mix with every other key in the database")
	}
	for i := 0; i < len(c.KeyPrefix); i++ {
		if b := c.KeyPrefix[i]; b <= ' ' || b == 0x7f {
			return nil, fmt.Errorf("redis.keyPrefix: %q holds white space or a control character", c.KeyPrefix)
		}
	}

	var caPEM []byte
	if !c.TLS && (c.TLSSkipVerify || c.TLSCAFile != "") {
		return nil, errors.New("redis.tls: false, but redis.tlsSkipVerify or redis.tlsCAFile is set; set redis.tls: true")
	}
	if c.TLS {
		s.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSSkipVerify} //nolint:gosec // off by default, documented as for tests
		if c.TLSCAFile != "" {
			caPEM, err = os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("redis.tlsCAFile: %w", err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(caPEM) {
				return nil, fmt.Errorf("redis.tlsCAFile: %q holds no PEM certificate", c.TLSCAFile)
			}
			s.tls.RootCAs = roots
		}
	}

	// AUTH with a username works for the default user too; AUTH with the password
	// alone is what Redis before 6 understands.
	if c.Username != "" {
		s.handshake = appendRedisCommand(s.handshake, "AUTH", c.Username, s.password)
		s.handshakeNames = append(s.handshakeNames, "AUTH")
	} else if s.password != "" {
		s.handshake = appendRedisCommand(s.handshake, "AUTH", s.password)
		s.handshakeNames = append(s.handshakeNames, "AUTH")
	}
	if c.DB != 0 {
		s.handshake = appendRedisCommand(s.handshake, "SELECT", strconv.Itoa(c.DB))
		s.handshakeNames = append(s.handshakeNames, "SELECT")
	}

	s.poolKey = strconv.Quote(s.address) + " " + strconv.Quote(s.username) + " " + strconv.Quote(s.password) +
		" " + strconv.Itoa(s.db) + " " + strconv.FormatBool(c.TLS) + " " + strconv.FormatBool(c.TLSSkipVerify) +
		" " + strconv.Quote(string(caPEM)) + " " + s.timeout.String() + " " + strconv.Quote(s.keyPrefix)
	return s, nil
}

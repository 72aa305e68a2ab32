package zegocallback

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RedisConfig is the redis section of the configuration: where the replay store shared
// by several Traefik replicas lives. Redis and Valkey speak the same protocol; either
// works. Traefik matches keys to field names without regard to case.
type RedisConfig struct {
	// Address is the server's host:port, or a URL: redis://[user[:password]@]host[:port][/db],
	// or rediss:// for TLS. A part the URL gives must not be set by its own option too.
	// Default "127.0.0.1:6379".
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
	// TLSCertFile and TLSKeyFile name the PEM files of the client certificate and its
	// key that Redis asks for with tls-auth-clients (Redis's default with TLS): mutual
	// TLS. Read again when they change. Default "".
	TLSCertFile string
	TLSKeyFile  string
	// Timeout bounds each step with Redis: the dial and handshake, each command's write
	// and read, and the wait for a free connection, as a Go duration. Default "500ms".
	Timeout string
	// KeyPrefix starts every key the store writes. Default "zego-callback:".
	KeyPrefix string
	// Sentinels are the addresses (host:port) of the Redis Sentinels that watch the
	// primary named MasterName: the store asks them for the primary, and asks again when
	// it fails or turns replica. Not with Address. Default none.
	Sentinels []string
	// MasterName is the name the sentinels know the primary by (sentinel monitor
	// <name> ...). Required with Sentinels. Default "".
	MasterName string
	// SentinelUsername, SentinelPassword and SentinelPasswordFile authenticate to the
	// sentinels (their requirepass or ACL user), as Username, Password and PasswordFile
	// do to Redis. Default "".
	SentinelUsername     string
	SentinelPassword     string
	SentinelPasswordFile string
	// TLSServerName is the name the servers' certificates must hold. Default "": the
	// host of Address, or of each node a cluster or the sentinels name.
	TLSServerName string
	// WaitReplicas has each claim and each delivery wait until this many replicas
	// hold it (WAIT, for at most half of Timeout), so that a failover that promotes one of
	// them loses neither: a claim fewer replicas acknowledge is withdrawn and the
	// callback gets 503 (ZEGO retries). Default 0: Redis's asynchronous replication, which
	// a failover can lose the last writes of (see the README).
	WaitReplicas int
	// FailOpen says what a callback gets when Redis cannot answer: false refuses it
	// with 503 nonce_store_unavailable (ZEGO retries); true checks every callback against
	// this Traefik's memory too, and forwards one Redis cannot answer for on that check
	// alone, and logs why. Default false.
	FailOpen bool
	// Unknown receives the keys no field above takes, which New refuses (see
	// Config.Unknown). It is not a key.
	Unknown map[string]any `mapstructure:",remain" json:"-"`
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
	address      string // host:port
	username     string
	password     string       // as configured, or from the URL
	passwordFile *watchedFile // or read from this file as it is now, when set
	db           int
	timeout      time.Duration
	tls          *tls.Config        // nil for a plain connection
	clientCert   *clientCertificate // tlsCertFile and tlsKeyFile, nil without
	keyPrefix    string
	failOpen     bool
	// sentinels and masterName, with sentinel's settings for speaking to them, when the
	// sentinels name the primary; checkRole has each new connection check it speaks to a
	// primary (ROLE), for the nodes they name.
	sentinels     []string
	masterName    string
	sentinel      *sentinelAuth
	checkRole     bool
	tlsServerName string
	// waitReplicas, with waitCommand (WAIT <n> <ms>) and waitFor its time, when each
	// write must reach that many replicas.
	waitReplicas int
	waitCommand  []byte
	waitFor      time.Duration
	log          *lineLimiter // the first middleware's that made the pool: its health lines
	// poolKey tells apart the settings that need a pool of their own (see
	// sharedRedisPool). It holds the password: it never leaves memory.
	poolKey string
}

// maxRedisTimeout bounds redis.timeout: a claim waits for Redis this long at most, and
// ZEGO waits for the answer.
const maxRedisTimeout = 10 * time.Second

// compileRedis checks c and builds the settings. Each error names the key and the bad
// value, never the password, in any form. It reads PasswordFile and TLSCAFile but does
// not connect: Redis may come up after Traefik, and a wrong password or an unreachable
// server shows on the requests, as 503 (or forwarding with FailOpen) with a log line
// that says why.
func compileRedis(c RedisConfig, log *lineLimiter, nowMs int64) (*redisSettings, error) {
	s := &redisSettings{username: c.Username, password: c.Password, db: c.DB, keyPrefix: c.KeyPrefix, failOpen: c.FailOpen, log: log}
	useTLS := c.TLS

	address := strings.TrimSpace(c.Address)
	if len(c.Sentinels) > 0 && address != defaultRedisConfig().Address {
		return nil, errors.New("redis.address: set together with redis.sentinels, which name the primary: remove redis.address (set redis.username, redis.passwordFile and redis.db on their own)")
	}
	if strings.Contains(address, "://") {
		var err error
		if address, useTLS, err = redisURL(address, c, s); err != nil {
			return nil, err
		}
	}
	if address == "" {
		return nil, errors.New("redis.address: empty; want host:port or redis://host:port")
	}
	if strings.Contains(address, "@") {
		return nil, errors.New("redis.address: holds a user or password (an @): write it as a URL, redis://user:password@host:port, or set redis.username and redis.passwordFile")
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("redis.address: %s is not host:port (a URL starts with redis:// or rediss://)", shownAddress(address))
	}
	if host == "" {
		return nil, fmt.Errorf("redis.address: %s has no host", shownAddress(address))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("redis.address: %s has no port number from 1 to 65535", shownAddress(address))
	}
	s.address = address

	if c.PasswordFile != "" {
		if s.password != "" {
			return nil, errors.New("redis.passwordFile: set together with a password (redis.password, or in redis.address); set one")
		}
		if s.passwordFile, err = watchFile("redis.passwordFile", c.PasswordFile, passwordLine, log, nowMs); err != nil {
			return nil, fmt.Errorf("redis.passwordFile: %w", err)
		}
	}

	if s.db < 0 {
		return nil, fmt.Errorf("redis.db: %d is negative", s.db)
	}

	if s.timeout, err = boundedDuration("redis.timeout", c.Timeout, time.Millisecond, maxRedisTimeout); err != nil {
		return nil, err
	}

	if c.WaitReplicas < 0 || c.WaitReplicas > maxWaitReplicas {
		return nil, fmt.Errorf("redis.waitReplicas: %d is not between 0 and %d", c.WaitReplicas, maxWaitReplicas)
	}
	if c.WaitReplicas > 0 {
		s.waitReplicas = c.WaitReplicas
		s.waitFor = s.timeout / 2
		if s.waitFor < time.Millisecond {
			s.waitFor = time.Millisecond
		}
		s.waitCommand = appendRedisCommand(nil, "WAIT", strconv.Itoa(c.WaitReplicas), strconv.FormatInt(s.waitFor.Milliseconds(), 10))
	}

	if c.KeyPrefix == "" {
		return nil, errors.New("redis.keyPrefix: empty; the store's keys would mix with every other key in the database")
	}
	for i := 0; i < len(c.KeyPrefix); i++ {
		if b := c.KeyPrefix[i]; b <= ' ' || b == 0x7f {
			return nil, fmt.Errorf("redis.keyPrefix: %q holds white space or a control character", c.KeyPrefix)
		}
	}

	var caPEM []byte
	if !useTLS && (c.TLSSkipVerify || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "") {
		return nil, errors.New("redis.tlsSkipVerify, redis.tlsCAFile, redis.tlsCertFile or redis.tlsKeyFile is set without TLS: set redis.tls: true (or use a rediss:// address)")
	}
	if len(c.Sentinels) > 0 || c.MasterName != "" || c.SentinelUsername != "" || c.SentinelPassword != "" || c.SentinelPasswordFile != "" {
		if err = compileSentinels(c, s, log, nowMs); err != nil {
			return nil, err
		}
	}
	if c.TLSServerName != "" {
		if !useTLS {
			return nil, errors.New("redis.tlsServerName: set without TLS: set redis.tls: true (or use a rediss:// address)")
		}
		if !redisHostName(c.TLSServerName) || strings.Contains(c.TLSServerName, ":") {
			return nil, fmt.Errorf("redis.tlsServerName: %s is not a host name", shownAddress(c.TLSServerName))
		}
		host = c.TLSServerName
		s.tlsServerName = c.TLSServerName
	}
	if useTLS {
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
		if c.TLSCertFile != "" || c.TLSKeyFile != "" {
			if s.clientCert, err = watchClientCertificate(c.TLSCertFile, c.TLSKeyFile, log, nowMs); err != nil {
				return nil, err
			}
			cc := s.clientCert
			s.tls.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return currentClientCertificate(cc), nil
			}
		}
	}

	s.poolKey = strconv.Quote(strings.Join(c.Sentinels, ",")) + " " + strconv.Quote(c.MasterName) + " " +
		strconv.Quote(c.SentinelUsername) + " " + strconv.Quote(c.SentinelPassword) + " " + strconv.Quote(c.SentinelPasswordFile) +
		" " + strconv.Quote(c.TLSServerName) + " " + strconv.Itoa(c.WaitReplicas) + " " + strconv.Quote(s.address) + " " + strconv.Quote(s.username) + " " + strconv.Quote(s.password) +
		" " + strconv.Quote(c.PasswordFile) + " " + strconv.Itoa(s.db) + " " + strconv.FormatBool(useTLS) +
		" " + strconv.FormatBool(c.TLSSkipVerify) + " " + strconv.Quote(string(caPEM)) + " " + s.timeout.String() +
		" " + strconv.Quote(s.keyPrefix) + " " + strconv.Quote(c.TLSCertFile) + " " + strconv.Quote(c.TLSKeyFile)
	return s, nil
}

// passwordLine reads a password file: its first line, white space trimmed.
func passwordLine(data []byte) ([]string, error) {
	line, _, _ := strings.Cut(string(data), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return nil, errors.New("holds no password on its first line")
	}
	return []string{line}, nil
}

// sentinelAuth is how to authenticate to the sentinels. (Not a redisSettings of its own
// inside redisSettings: Yaegi v0.16.1 cannot build a struct that holds a pointer to its
// own type.)
type sentinelAuth struct {
	username     string
	password     string
	passwordFile *watchedFile
}

// maxWaitReplicas bounds redis.waitReplicas: more replicas than any deployment runs would
// refuse every callback.
const maxWaitReplicas = 16

// maxSentinels bounds redis.sentinels: each is asked in turn when the primary fails.
const maxSentinels = 16

// compileSentinels checks the sentinel keys and sets s up to ask the sentinels for the
// primary.
func compileSentinels(c RedisConfig, s *redisSettings, log *lineLimiter, nowMs int64) error {
	if len(c.Sentinels) == 0 {
		return errors.New("redis.masterName or redis.sentinel*: set without redis.sentinels: list the sentinels' addresses (host:port), or remove them")
	}
	if len(c.Sentinels) > maxSentinels {
		return fmt.Errorf("redis.sentinels: %d addresses; at most %d", len(c.Sentinels), maxSentinels)
	}
	name := c.MasterName
	if name == "" {
		return errors.New("redis.masterName: empty; with redis.sentinels, the name the sentinels know the primary by (sentinel monitor <name> ...)")
	}
	if len(name) > 256 || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fmt.Errorf("redis.masterName: %q holds white space or a control character", boundedKey(name))
	}
	for i, a := range c.Sentinels {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || !redisHostName(host) {
			return fmt.Errorf("redis.sentinels[%d]: %s is not host:port", i, shownAddress(a))
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("redis.sentinels[%d]: %s has no port number from 1 to 65535", i, shownAddress(a))
		}
		s.sentinels = append(s.sentinels, a)
	}
	s.masterName = name
	s.address = "sentinel " + strconv.Quote(name)
	ss := &sentinelAuth{username: c.SentinelUsername, password: c.SentinelPassword}
	if c.SentinelPasswordFile != "" {
		if c.SentinelPassword != "" {
			return errors.New("redis.sentinelPasswordFile: set together with redis.sentinelPassword; set one")
		}
		var err error
		if ss.passwordFile, err = watchFile("redis.sentinelPasswordFile", c.SentinelPasswordFile, passwordLine, log, nowMs); err != nil {
			return fmt.Errorf("redis.sentinelPasswordFile: %w", err)
		}
	}
	s.sentinel = ss
	return nil
}

// clientCertificate is the client certificate Redis asks for (redis.tlsCertFile and
// redis.tlsKeyFile), each file watched as secretsFile is: a new connection presents the
// pair as the files hold it now, or, while they do not make a pair (one rewritten before
// the other), the last pair that did.
type clientCertificate struct {
	cert, key *watchedFile
	log       *lineLimiter
	mu        sync.Mutex
	certPEM   string // the texts of the pair in use
	keyPEM    string
	pair      *tls.Certificate
}

// watchClientCertificate reads the two files and checks that they make a pair.
func watchClientCertificate(certFile, keyFile string, log *lineLimiter, nowMs int64) (*clientCertificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("redis.tlsCertFile and redis.tlsKeyFile: set both, the client certificate and its key (PEM)")
	}
	pemText := func(data []byte) ([]string, error) {
		if !strings.Contains(string(data), "-----BEGIN ") {
			return nil, errors.New("holds no PEM block")
		}
		return []string{string(data)}, nil
	}
	cert, err := watchFile("redis.tlsCertFile", certFile, pemText, log, nowMs)
	if err != nil {
		return nil, fmt.Errorf("redis.tlsCertFile: %w", err)
	}
	key, err := watchFile("redis.tlsKeyFile", keyFile, pemText, log, nowMs)
	if err != nil {
		return nil, fmt.Errorf("redis.tlsKeyFile: %w", err)
	}
	c := &clientCertificate{cert: cert, key: key, log: log}
	c.certPEM = watchedValue(cert, nowMs)[0]
	c.keyPEM = watchedValue(key, nowMs)[0]
	pair, err := tls.X509KeyPair([]byte(c.certPEM), []byte(c.keyPEM))
	if err != nil {
		// crypto/tls's errors name no key material.
		return nil, fmt.Errorf("redis.tlsCertFile and redis.tlsKeyFile: %v", err)
	}
	c.pair = &pair
	return c, nil
}

// currentClientCertificate is the pair a new connection presents.
func currentClientCertificate(c *clientCertificate) *tls.Certificate {
	nowMs := time.Now().UnixMilli()
	certPEM := watchedValue(c.cert, nowMs)[0]
	keyPEM := watchedValue(c.key, nowMs)[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if certPEM == c.certPEM && keyPEM == c.keyPEM {
		return c.pair
	}
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		c.log.printf(levelError, "redis_client_certificate", "redis.tlsCertFile and redis.tlsKeyFile do not make a pair as they are now (%v): the pair read before stays in use", err)
		return c.pair
	}
	c.certPEM, c.keyPEM, c.pair = certPEM, keyPEM, &pair
	c.log.printf(levelDebug, "redis_client_certificate", "redis.tlsCertFile and redis.tlsKeyFile changed: new connections present the new pair")
	return c.pair
}

// redisURL reads a redis:// or rediss:// address into s (its user, password and
// database) and returns its host:port, and whether it asks for TLS (rediss).
// A part the URL gives must not be set by its own option too. Its errors show the URL
// with the password hidden.
func redisURL(address string, c RedisConfig, s *redisSettings) (hostPort string, useTLS bool, err error) {
	// No error shows the URL, or a part of it: a password holding a character a URL
	// reads otherwise ('#', '/', '?') ends up in another part.
	u, perr := url.Parse(address)
	switch {
	case perr != nil:
		return "", false, errors.New("redis.address: not a URL of the form redis://[user[:password]@]host[:port][/db] (percent-encode the password's special characters)")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return "", false, errors.New("redis.address: a URL whose scheme is neither redis:// nor rediss://")
	case u.Opaque != "" || u.RawQuery != "" || u.Fragment != "":
		return "", false, errors.New("redis.address: a URL with a query or a fragment (after ? or #), which is not read: set the redis options, and percent-encode a password's special characters")
	case u.Hostname() == "":
		return "", false, errors.New("redis.address: a URL without a host")
	case c.TLS:
		return "", false, errors.New("redis.tls: set together with a URL in redis.address, whose scheme says whether to use TLS (rediss://); set one")
	}
	if u.User != nil {
		if user := u.User.Username(); user != "" {
			if c.Username != "" {
				return "", false, errors.New("redis.username: set together with a user in redis.address; set one")
			}
			s.username = user
		}
		if password, ok := u.User.Password(); ok && password != "" {
			if c.Password != "" {
				return "", false, errors.New("redis.password: set together with a password in redis.address; set one")
			}
			s.password = password
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		n, aerr := strconv.Atoi(db)
		if aerr != nil || n < 0 {
			return "", false, errors.New("redis.address: a URL whose path is not a database number")
		}
		if c.DB != 0 {
			return "", false, errors.New("redis.db: set together with a database in redis.address; set one")
		}
		s.db = n
	}
	hostPort = u.Host
	if u.Port() == "" {
		hostPort = net.JoinHostPort(u.Hostname(), "6379")
	}
	return hostPort, u.Scheme == "rediss", nil
}

// shownAddress is a bare address as an error may show it: as written when it holds only
// what a host:port holds, else not at all, since whatever else it holds may be a password
// (user:password@host, host:port,password=..., a password after a space).
func shownAddress(address string) string {
	for i := 0; i < len(address); i++ {
		c := address[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_:[]", c) >= 0) {
			return "(not shown)"
		}
	}
	return strconv.Quote(boundedKey(address))
}

// redisPassword is the password to AUTH with now: the file's, read again when it
// changed, or the configured one.
func redisPassword(s *redisSettings) string {
	if s.passwordFile != nil {
		return watchedValue(s.passwordFile, time.Now().UnixMilli())[0]
	}
	return s.password
}

// redisHandshake is AUTH and SELECT, as a new connection sends them in one write, and
// the name of each command, in order, for errors. AUTH with a username works for the
// default user too; AUTH with the password alone is what Redis before 6 understands.
func redisHandshake(s *redisSettings) ([]byte, []string) {
	var cmds []byte
	var names []string
	password := redisPassword(s)
	if s.username != "" {
		cmds = appendRedisCommand(cmds, "AUTH", s.username, password)
		names = append(names, "AUTH")
	} else if password != "" {
		cmds = appendRedisCommand(cmds, "AUTH", password)
		names = append(names, "AUTH")
	}
	if s.db != 0 {
		cmds = appendRedisCommand(cmds, "SELECT", strconv.Itoa(s.db))
		names = append(names, "SELECT")
	}
	return cmds, names
}

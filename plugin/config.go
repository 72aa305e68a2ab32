package zegocallback

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config is the middleware's dynamic configuration. Traefik fills it from a file, Docker
// labels or a Kubernetes Middleware, matching keys to field names without regard to case;
// it drops unknown keys without a word, so New checks what it gets. Durations are
// strings (Traefik's decoder has none), parsed by New.
type Config struct {
	// Secrets are the accepted CallbackSecrets (ZEGO console, Project Information); a
	// callback passes when its signature matches any one. Several allow rotation and
	// several apps behind one route. Surrounding white space is trimmed. No default.
	Secrets []string
	// SecretsFile names a file with one secret per line (white space trimmed, blank and
	// '#' lines ignored), read by New and added to Secrets: for Docker and Kubernetes
	// secret mounts, so that secrets stay out of the dynamic configuration and Traefik's
	// debug log. Default "".
	SecretsFile string
	// TimestampTolerance is how far a callback's timestamp may be from this proxy's
	// clock, in the past or in the future, as a Go duration. Default "5m".
	TimestampTolerance string
	// TimestampUnit is the unit of the callbacks' timestamps: "seconds" (RTC, ZIM and
	// most products) or "milliseconds" (AI Agent, real-time ASR). The digit count never
	// decides: a timestamp in the other unit is stale. Default "seconds".
	TimestampUnit string
	// Events lists the accepted event values; empty accepts every event. Default empty.
	Events []string
	// MaxBodyBytes is the largest body accepted, in bytes, at most 16777216; larger
	// ones get 413. Default 1048576.
	MaxBodyBytes int64
	// HeaderPrefix starts every header this middleware adds, and every incoming header
	// it strips. Default "X-Zego-".
	HeaderPrefix string
	// Duplicates says what a verified callback that was already delivered gets:
	// "acknowledge" (200 with X-Zego-Duplicate: true, not forwarded) or "reject" (409).
	// Default "acknowledge".
	Duplicates string
	// NonceCapacity is the most callbacks the in-memory replay store remembers at once;
	// when it is full, new callbacks get 503 until entries expire. Default 1000000.
	NonceCapacity int
	// ReplayKey is what the replay store knows a callback by: "signature" (the signed
	// triple; a second body under a triple already seen is refused, 409
	// signature_reused) or "signatureAndBody" (the triple and a digest of the body, so
	// that two callbacks sharing a triple are each accepted once). Default "signature".
	ReplayKey string
	// InFlightTimeout is how long a claimed callback stays in flight without an answer
	// from the backend before its claim lapses and a copy may be forwarded again, as a
	// Go duration: at least 1s, at most twice TimestampTolerance. Default "20s".
	InFlightTimeout string
	// Fields lists the top-level body fields, by their name in the body, that become
	// headers; empty means every one. Default empty.
	Fields []string
	// MaxHeaderFields is the most fields copied into headers per request; an array
	// counts as one. Default 64.
	MaxHeaderFields int
	// MaxHeaderValueBytes is the longest field value copied into a header, in bytes (for
	// an array, the length of its JSON text); longer ones stay in the body only.
	// Default 1024.
	MaxHeaderValueBytes int
	// ReportOnly verifies and annotates but forwards everything, logging what would have
	// been rejected: for a safe rollout. Default false.
	ReportOnly bool
	// NonceStore is where the replay store lives: "memory" (this Traefik) or "redis"
	// (shared by Traefik replicas, see Redis). Default "memory".
	NonceStore string
	// Redis configures the Redis (or Valkey) replay store used when NonceStore is "redis".
	Redis RedisConfig
}

// CreateConfig returns the default configuration. There is no default secret.
func CreateConfig() *Config {
	return &Config{
		TimestampTolerance:  "5m",
		TimestampUnit:       "seconds",
		MaxBodyBytes:        1 << 20,
		HeaderPrefix:        "X-Zego-",
		Duplicates:          "acknowledge",
		NonceCapacity:       1000000,
		ReplayKey:           "signature",
		InFlightTimeout:     "20s",
		MaxHeaderFields:     64,
		MaxHeaderValueBytes: 1024,
		NonceStore:          "memory",
		Redis:               defaultRedisConfig(),
	}
}

// maxBodyLimit bounds maxBodyBytes: ZEGO's callbacks are a few kilobytes, and a body is
// held whole in memory while it is checked.
const maxBodyLimit = 16 << 20

// settings is a Config checked and turned into what requests need.
type settings struct {
	secrets       []string
	toleranceMs   int64
	millis        bool            // timestamps are in milliseconds, not seconds
	unitMs        int64           // a timestamp's unit, 1 or 1000 ms (see timestampLimits)
	maxTimestamp  uint64          // the largest timestamp accepted
	inFlightMs    int64           // how long a claim lasts without an answer
	bodyInKey     bool            // replayKey signatureAndBody
	events        map[string]bool // nil accepts every event
	maxBodyBytes  int64
	ackDuplicates bool
	capacity      int
	reportOnly    bool
	headers       *headerBuilder
	redis         *redisSettings // nil for the memory store
}

// compile checks c and builds the settings. Each error names the key and the bad value,
// never a secret.
func compile(c *Config) (*settings, error) {
	if c == nil {
		return nil, errors.New("no configuration")
	}
	s := &settings{maxBodyBytes: c.MaxBodyBytes, capacity: c.NonceCapacity, reportOnly: c.ReportOnly}

	secrets, err := collectSecrets(c.Secrets, c.SecretsFile)
	if err != nil {
		return nil, err
	}
	s.secrets = secrets

	tolerance, err := positiveDuration("timestampTolerance", c.TimestampTolerance)
	if err != nil {
		return nil, err
	}
	if tolerance < time.Second {
		// ZEGO's timestamps are whole seconds: less would refuse most callbacks as stale.
		return nil, fmt.Errorf("timestampTolerance: %q is less than 1s", c.TimestampTolerance)
	}
	s.toleranceMs = tolerance.Milliseconds()

	switch c.TimestampUnit {
	case "seconds":
	case "milliseconds":
		s.millis = true
	default:
		return nil, fmt.Errorf("timestampUnit: %q is neither seconds nor milliseconds", c.TimestampUnit)
	}
	s.unitMs, s.maxTimestamp = timestampLimits(s.millis)

	inFlight, err := positiveDuration("inFlightTimeout", c.InFlightTimeout)
	if err != nil {
		return nil, err
	}
	if inFlight < time.Second || inFlight > 2*tolerance {
		// Under a second, a slow backend's callback would be forwarded twice; past twice
		// the tolerance, a claim would outlive the callback's freshness.
		return nil, fmt.Errorf("inFlightTimeout: %q is not between 1s and twice timestampTolerance (%v)", c.InFlightTimeout, 2*tolerance)
	}
	s.inFlightMs = inFlight.Milliseconds()

	switch c.ReplayKey {
	case "signature":
	case "signatureAndBody":
		s.bodyInKey = true
	default:
		return nil, fmt.Errorf("replayKey: %q is neither signature nor signatureAndBody", c.ReplayKey)
	}

	switch c.Duplicates {
	case "acknowledge":
		s.ackDuplicates = true
	case "reject":
	default:
		return nil, fmt.Errorf("duplicates: %q is neither acknowledge nor reject", c.Duplicates)
	}

	if c.MaxBodyBytes <= 0 || c.MaxBodyBytes > maxBodyLimit {
		return nil, fmt.Errorf("maxBodyBytes: %d is not a size from 1 to %d", c.MaxBodyBytes, maxBodyLimit)
	}
	if c.NonceCapacity <= 0 {
		return nil, fmt.Errorf("nonceCapacity: %d is not a positive count", c.NonceCapacity)
	}
	if c.MaxHeaderFields <= 0 {
		return nil, fmt.Errorf("maxHeaderFields: %d is not a positive count", c.MaxHeaderFields)
	}
	if c.MaxHeaderValueBytes <= 0 {
		return nil, fmt.Errorf("maxHeaderValueBytes: %d is not a positive size", c.MaxHeaderValueBytes)
	}

	switch c.NonceStore {
	case "memory":
	case "redis":
		if s.redis, err = compileRedis(c.Redis); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("nonceStore: %q is neither memory nor redis", c.NonceStore)
	}

	if err := checkHeaderPrefix(c.HeaderPrefix); err != nil {
		return nil, err
	}

	events, err := nonEmptyItems("events", c.Events)
	if err != nil {
		return nil, err
	}
	if len(events) > 0 {
		s.events = make(map[string]bool, len(events))
		for _, e := range events {
			s.events[e] = true
		}
	}

	fields, err := nonEmptyItems("fields", c.Fields)
	if err != nil {
		return nil, err
	}
	for i, f := range fields {
		if f == "signature" || f == "Signature" {
			return nil, fmt.Errorf("fields[%d]: %q is never copied into a header", i, f)
		}
	}
	s.headers = newHeaderBuilder(c.HeaderPrefix, fields, c.MaxHeaderFields, c.MaxHeaderValueBytes)
	return s, nil
}

// collectSecrets returns the inline secrets and those of the secrets file, trimmed.
func collectSecrets(inline []string, file string) ([]string, error) {
	secrets := make([]string, 0, len(inline)+1)
	for i, s := range inline {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("secrets[%d]: empty secret", i)
		}
		secrets = append(secrets, s)
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("secretsFile: %w", err)
		}
		found := 0
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			secrets = append(secrets, line)
			found++
		}
		if found == 0 {
			return nil, fmt.Errorf("secretsFile: %q holds no secret", file)
		}
	}
	if len(secrets) == 0 {
		return nil, errors.New("secrets: no CallbackSecret configured; set secrets or secretsFile")
	}
	return secrets, nil
}

func positiveDuration(key, value string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(value))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as 5m or 30s", key, value)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: %q is not positive", key, value)
	}
	return d, nil
}

// nonEmptyItems trims a list's items and refuses empty ones (a stray comma in a label).
func nonEmptyItems(key string, items []string) ([]string, error) {
	out := make([]string, 0, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%s[%d]: empty item", key, i)
		}
		out = append(out, item)
	}
	return out, nil
}

// checkHeaderPrefix accepts a header token that ends with '-', has no '_' (which some
// servers read as '-', so stripping could not be trusted), and starts no header that
// Traefik, a proxy or a backend relies on: the middleware strips every incoming header
// with the prefix and writes body fields under it, so a prefix such as "X-" or
// "X-Forwarded-" would let a body field stand for X-Forwarded-For.
func checkHeaderPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("headerPrefix: empty; every incoming header would be stripped")
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^`|~", c) >= 0
		if !ok {
			return fmt.Errorf("headerPrefix: %q holds %q, which is not allowed in a header name or is '_'", prefix, string(c))
		}
	}
	if !strings.HasSuffix(prefix, "-") {
		return fmt.Errorf("headerPrefix: %q does not end with '-'", prefix)
	}
	for _, known := range reservedHeaders {
		if len(known) >= len(prefix) && strings.EqualFold(known[:len(prefix)], prefix) {
			return fmt.Errorf("headerPrefix: %q starts %s, which the middleware would strip and let a body field write", prefix, known)
		}
	}
	return nil
}

// reservedHeaders are headers a prefix must not cover: those Traefik and proxies set on
// a forwarded request, and the usual ones of HTTP.
var reservedHeaders = []string{
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Forwarded-Prefix",
	"X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Tls-Client-Cert",
	"X-Forwarded-Tls-Client-Cert-Info", "X-Real-Ip", "X-Request-Id", "X-Correlation-Id", "X-Amzn-Trace-Id",
	"X-Original-Forwarded-For", "X-Client-Ip", "X-Cluster-Client-Ip", "X-Http-Method-Override",
	"Forwarded", "Via", "Host", "Authorization", "Proxy-Authorization", "Cookie", "Content-Type",
	"Content-Length", "Content-Encoding", "Transfer-Encoding", "Connection", "Upgrade", "Accept",
	"Accept-Encoding", "User-Agent", "Referer", "Origin", "Traceparent", "Tracestate", "Baggage",
}

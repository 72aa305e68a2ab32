package zegocallback

import (
	"errors"
	"fmt"
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
	// AppSecrets binds secrets to app ids: a callback is checked against the secrets of
	// the app id its body names (and against Secrets, accepted for every app). Keys are
	// app ids, quoted in YAML. Default none.
	AppSecrets map[string][]string
	// AppSecretsFile names a file with one "appid secret" pair per line, added to
	// AppSecrets and read again when it changes. Default "".
	AppSecretsFile string
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
	// RememberAnswerBytes is the longest answer body of the backend's, in bytes, that the
	// replay store keeps with a delivered callback, with its status and Content-Type: a
	// duplicate of it gets that answer back (ZIM's before_send_msg carries its result
	// in it). 0 keeps none. At most 4096. Default 256.
	RememberAnswerBytes int
	// RetryOn is how the products behind the route retry: "non2xx" (RTC, ZIM, AI Agent
	// and most: any answer but a 2xx) or "noAnswer" (cloud player, cloud recording,
	// super board: only a callback that got no answer at all). With "noAnswer", what
	// asks ZEGO to try again (the store unavailable, the same callback in flight, a
	// backend's 5xx) closes the connection without an answer. Default "non2xx".
	RetryOn string
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
	// Unknown receives the keys no field above takes, which Traefik would otherwise drop
	// without a word: New refuses them, naming the nearest key it knows. It is not a key.
	Unknown map[string]any `mapstructure:",remain" json:"-"`
}

// CreateConfig returns the default configuration. There is no default secret.
func CreateConfig() *Config {
	return &Config{
		TimestampTolerance:  "5m",
		TimestampUnit:       "seconds",
		MaxBodyBytes:        1 << 20,
		HeaderPrefix:        "X-Zego-",
		Duplicates:          "acknowledge",
		RememberAnswerBytes: 256,
		RetryOn:             "non2xx",
		NonceCapacity:       1000000,
		ReplayKey:           "signature",
		InFlightTimeout:     "20s",
		MaxHeaderFields:     64,
		MaxHeaderValueBytes: 1024,
		NonceStore:          "memory",
		Redis:               defaultRedisConfig(),
	}
}

// The bounds of the sizes, counts and durations, each far past what a ZEGO callback
// needs: a value past one is a mistake (a unit missed, a digit too many), refused
// before it could overflow a sum or hold memory without end.
const (
	// maxBodyLimit bounds maxBodyBytes: ZEGO's callbacks are a few kilobytes, and a body
	// is held whole in memory while it is checked.
	maxBodyLimit = 16 << 20
	// maxTolerance bounds timestampTolerance, and so how long the store remembers a
	// callback (twice it): ZEGO retries a callback for about a minute.
	maxTolerance = time.Hour
	// maxCapacity bounds nonceCapacity: a remembered callback takes about 180 bytes with a
	// 20-byte answer.
	maxCapacity = 100000000
	// maxAnswerLimit bounds rememberAnswerBytes: what ZEGO reads of an answer is a few
	// fields, and each remembered callback holds its answer for the store's lifetime.
	maxAnswerLimit = 4096
	// maxHeaderFieldsLimit and maxHeaderValueLimit bound maxHeaderFields and
	// maxHeaderValueBytes: a form holds at most maxFormFields fields, and servers
	// refuse requests whose headers pass a few tens of kilobytes.
	maxHeaderFieldsLimit = maxFormFields
	maxHeaderValueLimit  = 65536
)

// minSecretLen is the shortest secret accepted: ZEGO's have 32 characters.
const minSecretLen = 16

// settings is a Config checked and turned into what requests need.
type settings struct {
	secrets     []string     // every secret, as New read them
	secretsFile *watchedFile // nil without secretsFile; else secrets as it holds them now
	// appSecrets is each app id's secrets (appSecrets and appSecretsFile), nil without
	// either; appSecretsFile is the file, watched.
	appSecrets     map[string][]string
	appSecretsFile *watchedFile
	log            *lineLimiter
	toleranceMs    int64
	millis         bool            // timestamps are in milliseconds, not seconds
	unitMs         int64           // a timestamp's unit, 1 or 1000 ms (see timestampLimits)
	toleranceUnits int64           // toleranceMs in whole units: how far a timestamp may be from now
	windowUnits    uint64          // the window's width: toleranceUnits twice
	maxTimestamp   uint64          // the largest timestamp accepted
	inFlightMs     int64           // how long a claim lasts without an answer
	bodyInKey      bool            // replayKey signatureAndBody
	events         map[string]bool // nil accepts every event
	eventList      string          // the events option, for the log
	maxBodyBytes   int64
	ackDuplicates  bool
	answerBytes    int  // rememberAnswerBytes
	noAnswer       bool // retryOn noAnswer
	capacity       int
	reportOnly     bool
	headers        *headerBuilder
	redis          *redisSettings // nil for the memory store
}

// compile checks c and builds the settings of the middleware called name. Each error
// names the key, says what to write instead, and never holds a secret.
func compile(c *Config, name string, nowMs int64) (*settings, error) {
	if c == nil {
		return nil, errors.New("no configuration")
	}
	if err := checkKeys(c); err != nil {
		return nil, err
	}
	s := &settings{maxBodyBytes: c.MaxBodyBytes, capacity: c.NonceCapacity, reportOnly: c.ReportOnly, log: lineLimiterOf(name)}

	if err := compileSecrets(s, c, nowMs); err != nil {
		return nil, err
	}
	if err := compileAppSecrets(s, c, nowMs); err != nil {
		return nil, err
	}
	if len(s.secrets) == 0 && s.appSecrets == nil {
		return nil, errors.New("secrets: no CallbackSecret configured; set secretsFile (or secrets), or appSecretsFile (or appSecrets) for a secret per app id")
	}

	// ZEGO's timestamps are whole seconds: under a second would refuse most callbacks.
	tolerance, err := boundedDuration("timestampTolerance", c.TimestampTolerance, time.Second, maxTolerance)
	if err != nil {
		return nil, err
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
	// A whole number of units d is within the tolerance when d × unitMs is, that is when
	// d is at most toleranceMs / unitMs, rounded down.
	s.toleranceUnits = s.toleranceMs / s.unitMs
	s.windowUnits = uint64(2 * s.toleranceUnits)

	// Under a second, a slow backend's callback would be forwarded twice; past twice the
	// tolerance, a claim would outlive the callback's freshness.
	inFlight, err := positiveDuration("inFlightTimeout", c.InFlightTimeout)
	if err != nil {
		return nil, err
	}
	if inFlight < time.Second || inFlight > 2*tolerance {
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

	switch c.RetryOn {
	case "non2xx":
	case "noAnswer":
		s.noAnswer = true
	default:
		return nil, fmt.Errorf("retryOn: %q is neither non2xx nor noAnswer (cloud player, cloud recording and super board retry only when they get no answer)", c.RetryOn)
	}

	if c.RememberAnswerBytes < 0 || c.RememberAnswerBytes > maxAnswerLimit {
		return nil, fmt.Errorf("rememberAnswerBytes: %d is not a number from 0 to %d", c.RememberAnswerBytes, maxAnswerLimit)
	}
	s.answerBytes = c.RememberAnswerBytes

	for _, n := range []struct {
		key        string
		value, max int64
	}{
		{"maxBodyBytes", c.MaxBodyBytes, maxBodyLimit},
		{"nonceCapacity", int64(c.NonceCapacity), maxCapacity},
		{"maxHeaderFields", int64(c.MaxHeaderFields), maxHeaderFieldsLimit},
		{"maxHeaderValueBytes", int64(c.MaxHeaderValueBytes), maxHeaderValueLimit},
	} {
		if n.value < 1 || n.value > n.max {
			return nil, fmt.Errorf("%s: %d is not a number from 1 to %d", n.key, n.value, n.max)
		}
	}

	switch c.NonceStore {
	case "memory":
		// The redis section would be ignored: two replicas that were meant to share a
		// store would each deliver the same replay.
		if set := redisKeysSet(c.Redis); len(set) > 0 {
			return nil, fmt.Errorf("%s set, but nonceStore is memory: set nonceStore: redis to use Redis, or remove the redis section", strings.Join(set, ", "))
		}
	case "redis":
		if c.NonceCapacity != CreateConfig().NonceCapacity {
			return nil, errors.New("nonceCapacity: set, but it bounds the memory store and nonceStore is redis: remove it")
		}
		if s.redis, err = compileRedis(c.Redis, s.log, nowMs); err != nil {
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
		s.eventList = "[" + strings.Join(events, ", ") + "]"
		if len(s.eventList) > 256 {
			s.eventList = s.eventList[:256] + "...]"
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

// compileSecrets checks the inline secrets and reads the secrets file, which the
// requests read again when it changes (see watchedFile).
func compileSecrets(s *settings, c *Config, nowMs int64) error {
	inline := make([]string, 0, len(c.Secrets))
	for i, secret := range c.Secrets {
		secret = strings.TrimSpace(secret)
		if err := checkSecret(secret); err != nil {
			return fmt.Errorf("secrets[%d]: %w; give each secret as its own list item", i, err)
		}
		inline = append(inline, secret)
	}
	s.secrets = inline
	if c.SecretsFile != "" {
		parse := func(data []byte) ([]string, error) {
			secrets, err := secretLines(data)
			if err != nil {
				return nil, err
			}
			// A rewrite may list an app's secret (appSecrets), which would sign every
			// app's callbacks (none at load: the apps are read after).
			if err := secretsOfOneKind(appTableNow(s, time.Now().UnixMilli()), secrets); err != nil {
				return nil, err
			}
			return append(append(make([]string, 0, len(inline)+len(secrets)), inline...), secrets...), nil
		}
		w, err := watchFile("secretsFile", c.SecretsFile, parse, s.log, nowMs)
		if err != nil {
			return fmt.Errorf("secretsFile: %w", err)
		}
		s.secretsFile = w
		s.secrets = watchedValue(w, nowMs)
	}
	return nil
}

// secretLines reads a secrets file: one secret per line, white space around it trimmed,
// blank lines and lines starting with '#' ignored. Its errors name a line, never its text.
func secretLines(data []byte) ([]string, error) {
	var secrets []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := checkSecret(line); err != nil {
			return nil, fmt.Errorf("line %d %w; write one secret per line", i+1, err)
		}
		secrets = append(secrets, line)
	}
	if len(secrets) == 0 {
		return nil, errors.New("holds no secret (one per line; blank and # lines are skipped)")
	}
	return secrets, nil
}

// checkSecret refuses a secret no ZEGO project has: empty, shorter than 16 characters (a
// file read half written, a placeholder: one that could be guessed), or holding white
// space, a comma or a byte that is not printable ASCII, which is two secrets run together
// or a pasting slip (ZEGO's CallbackSecrets are 32 hex digits).
func checkSecret(secret string) error {
	if secret == "" {
		return errors.New("empty")
	}
	if len(secret) < minSecretLen {
		return fmt.Errorf("shorter than %d characters (ZEGO's CallbackSecrets have 32)", minSecretLen)
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return errors.New("holds white space, a comma or a character that is not printable ASCII")
		}
	}
	return nil
}

// boundedDuration parses a duration option, from lo to hi. A number without a unit is
// refused, not read as nanoseconds.
func boundedDuration(key, value string, lo, hi time.Duration) (time.Duration, error) {
	d, err := positiveDuration(key, value)
	if err != nil {
		return 0, err
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s: %q is not between %v and %v", key, value, lo, hi)
	}
	return d, nil
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
	if strings.Trim(strings.ToLower(prefix), "abcdefghijklmnopqrstuvwxyz") == strings.ToLower(prefix) {
		return fmt.Errorf("headerPrefix: %q holds no letter", prefix)
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

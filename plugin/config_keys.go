package zegocallback

import (
	"fmt"
	"sort"
	"strings"
)

// The keys a configuration may hold, as the README writes them. Traefik matches them to
// Config's fields without regard to case, and hands every other key to Config.Unknown
// (and RedisConfig.Unknown): a misspelt key, which Traefik would drop without a word,
// would leave a default in force (a five-minute tolerance for timestampTolerence: 10s).
// TestConfigKeys holds these lists against Config.
var (
	configKeys = []string{
		"secrets", "secretsFile", "appSecrets", "appSecretsFile", "timestampTolerance", "timestampUnit", "events", "maxBodyBytes",
		"headerPrefix", "duplicates", "rememberAnswerBytes", "retryOn", "nonceCapacity", "replayKey", "inFlightTimeout", "fields",
		"maxHeaderFields", "maxHeaderValueBytes", "reportOnly", "nonceStore", "redis",
	}
	redisKeys = []string{
		"address", "username", "password", "passwordFile", "db", "tls", "tlsSkipVerify", "tlsCAFile", "tlsCertFile", "tlsKeyFile",
		"timeout", "keyPrefix", "sentinels", "masterName", "sentinelUsername", "sentinelPassword",
		"sentinelPasswordFile", "tlsServerName", "waitReplicas", "failOpen",
	}
)

// checkKeys refuses the keys of c that no option takes, each with the known key nearest
// to it. Their values are not shown: a misspelt secret's would be a secret.
func checkKeys(c *Config) error {
	var unknown []string
	for k := range c.Unknown {
		unknown = append(unknown, k)
	}
	for k := range c.Redis.Unknown {
		unknown = append(unknown, "redis."+k)
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(configKeys)+len(redisKeys))
	known = append(known, configKeys...)
	for _, k := range redisKeys {
		known = append(known, "redis."+k)
	}
	parts := make([]string, 0, len(unknown))
	for _, k := range unknown {
		part := fmt.Sprintf("%q", boundedKey(k))
		if near := nearestKey(k, known); near != "" {
			part += " (did you mean " + near + "?)"
		}
		parts = append(parts, part)
	}
	what := "unknown key"
	if len(parts) > 1 {
		what = "unknown keys"
	}
	return fmt.Errorf("%s %s: the README's options table lists the keys", what, strings.Join(parts, ", "))
}

// boundedKey bounds what a key can put into an error.
func boundedKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "..."
	}
	return k
}

// nearestKey returns the known key closest to k, compared without regard to case, whole
// or by its last part (address for redis.address), when few enough edits separate them
// to be a slip; else "".
func nearestKey(k string, known []string) string {
	k = strings.ToLower(k)
	best, bestDistance := "", 0
	for _, candidate := range known {
		c := strings.ToLower(candidate)
		d := editDistance(k, c)
		if dot := strings.LastIndexByte(c, '.'); dot >= 0 {
			if last := editDistance(lastPart(k), c[dot+1:]); last < d {
				d = last
			}
		}
		if best == "" || d < bestDistance {
			best, bestDistance = candidate, d
		}
	}
	if bestDistance > 2+len(k)/4 {
		return ""
	}
	return best
}

func lastPart(k string) string {
	return k[strings.LastIndexByte(k, '.')+1:]
}

// editDistance is the Levenshtein distance between a and b, in bytes: how many bytes must
// be inserted, deleted or replaced to turn one into the other.
func editDistance(a, b string) int {
	if len(a) > 128 || len(b) > 128 {
		return len(a) + len(b)
	}
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		diagonal := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			next := diagonal + cost
			if row[j]+1 < next {
				next = row[j] + 1
			}
			if row[j-1]+1 < next {
				next = row[j-1] + 1
			}
			diagonal = row[j]
			row[j] = next
		}
	}
	return row[len(b)]
}

// redisKeysSet lists the redis keys c sets to something other than their default.
func redisKeysSet(c RedisConfig) []string {
	d := defaultRedisConfig()
	var set []string
	for _, k := range []struct {
		key string
		set bool
	}{
		{"address", c.Address != d.Address}, {"username", c.Username != d.Username},
		{"password", c.Password != d.Password}, {"passwordFile", c.PasswordFile != d.PasswordFile},
		{"db", c.DB != d.DB}, {"tls", c.TLS != d.TLS}, {"tlsSkipVerify", c.TLSSkipVerify != d.TLSSkipVerify},
		{"tlsCAFile", c.TLSCAFile != d.TLSCAFile}, {"tlsCertFile", c.TLSCertFile != d.TLSCertFile},
		{"tlsKeyFile", c.TLSKeyFile != d.TLSKeyFile}, {"timeout", c.Timeout != d.Timeout},
		{"keyPrefix", c.KeyPrefix != d.KeyPrefix}, {"failOpen", c.FailOpen != d.FailOpen},
		{"sentinels", len(c.Sentinels) > 0}, {"masterName", c.MasterName != d.MasterName},
		{"sentinelUsername", c.SentinelUsername != d.SentinelUsername}, {"sentinelPassword", c.SentinelPassword != d.SentinelPassword},
		{"sentinelPasswordFile", c.SentinelPasswordFile != d.SentinelPasswordFile}, {"tlsServerName", c.TLSServerName != d.TLSServerName},
		{"waitReplicas", c.WaitReplicas != d.WaitReplicas},
	} {
		if k.set {
			set = append(set, "redis."+k.key)
		}
	}
	return set
}

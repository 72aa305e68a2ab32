package pluginload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/traefik/paerser/file"
	"github.com/traefik/paerser/parser"
	"gopkg.in/yaml.v3"
)

// The parts of Traefik's dynamic.Configuration that the sample configurations use,
// with the same field names and tags (traefik/v3 pkg/config/dynamic), so that paerser
// fills them as it fills Traefik's own.
type (
	// DynamicConfig mirrors dynamic.Configuration.
	DynamicConfig struct {
		HTTP *HTTPConfig `json:"http,omitempty" toml:"http,omitempty" yaml:"http,omitempty" export:"true"`
	}
	// HTTPConfig mirrors dynamic.HTTPConfiguration.
	HTTPConfig struct {
		Routers     map[string]*Router     `json:"routers,omitempty" toml:"routers,omitempty" yaml:"routers,omitempty" export:"true"`
		Middlewares map[string]*Middleware `json:"middlewares,omitempty" toml:"middlewares,omitempty" yaml:"middlewares,omitempty" export:"true"`
		Services    map[string]*Service    `json:"services,omitempty" toml:"services,omitempty" yaml:"services,omitempty" export:"true"`
	}
	// Router mirrors dynamic.Router.
	Router struct {
		EntryPoints []string         `json:"entryPoints,omitempty" toml:"entryPoints,omitempty" yaml:"entryPoints,omitempty" export:"true"`
		Middlewares []string         `json:"middlewares,omitempty" toml:"middlewares,omitempty" yaml:"middlewares,omitempty" export:"true"`
		Service     string           `json:"service,omitempty" toml:"service,omitempty" yaml:"service,omitempty" export:"true"`
		Rule        string           `json:"rule,omitempty" toml:"rule,omitempty" yaml:"rule,omitempty"`
		TLS         *RouterTLSConfig `json:"tls,omitempty" toml:"tls,omitempty" yaml:"tls,omitempty" label:"allowEmpty" file:"allowEmpty" kv:"allowEmpty" export:"true"`
	}
	// RouterTLSConfig mirrors dynamic.RouterTLSConfig.
	RouterTLSConfig struct {
		Options      string `json:"options,omitempty" toml:"options,omitempty" yaml:"options,omitempty" export:"true"`
		CertResolver string `json:"certResolver,omitempty" toml:"certResolver,omitempty" yaml:"certResolver,omitempty" export:"true"`
	}
	// Service mirrors dynamic.Service.
	Service struct {
		LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty" toml:"loadBalancer,omitempty" yaml:"loadBalancer,omitempty" export:"true"`
	}
	// LoadBalancer mirrors dynamic.ServersLoadBalancer.
	LoadBalancer struct {
		Servers []Server `json:"servers,omitempty" toml:"servers,omitempty" yaml:"servers,omitempty" label-slice-as-struct:"server" export:"true"`
	}
	// Server mirrors dynamic.Server.
	Server struct {
		URL  string `json:"url,omitempty" toml:"url,omitempty" yaml:"url,omitempty" label:"-"`
		Port string `json:"-" toml:"-" yaml:"-"`
	}
	// Middleware mirrors dynamic.Middleware's plugin part.
	Middleware struct {
		Plugin map[string]PluginConf `json:"plugin,omitempty" toml:"plugin,omitempty" yaml:"plugin,omitempty" export:"true"`
	}
	// PluginConf mirrors dynamic.PluginConf.
	PluginConf map[string]any
)

// PluginConfFromFile decodes a file provider's configuration (.yml, .yaml or .toml) as
// Traefik's file provider does and returns the settings of plugin under middleware.
func PluginConfFromFile(path, middleware, plugin string) (map[string]any, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ext := strings.ToLower(path[strings.LastIndex(path, "."):])
	var cfg DynamicConfig
	if err := file.DecodeContent(string(content), ext, &cfg); err != nil {
		return nil, err
	}
	return pluginConf(cfg, middleware, plugin)
}

// PluginConfFromLabels decodes Docker labels as Traefik's label.DecodeConfiguration does.
func PluginConfFromLabels(labels map[string]string, middleware, plugin string) (map[string]any, error) {
	var cfg DynamicConfig
	if err := parser.Decode(labels, &cfg, parser.DefaultRootName, "traefik.http"); err != nil {
		return nil, err
	}
	return pluginConf(cfg, middleware, plugin)
}

// ComposeLabels returns the labels of service in a docker-compose file.
func ComposeLabels(path, service string) (map[string]string, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var compose struct {
		Services map[string]struct {
			Labels []string `yaml:"labels"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(content, &compose); err != nil {
		return nil, err
	}
	svc, ok := compose.Services[service]
	if !ok {
		return nil, fmt.Errorf("no service %q", service)
	}
	labels := make(map[string]string, len(svc.Labels))
	for _, l := range svc.Labels {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	return labels, nil
}

// PluginConfFromKubernetes reads a manifest file holding a Secret and a Middleware and
// does what Traefik's CRD provider does (createPluginMiddleware): the Middleware's
// spec.plugin goes through JSON (numbers become float64) and every string that starts
// with urn:k8s:secret: is replaced with the Secret's value.
func PluginConfFromKubernetes(path, middleware, plugin string) (map[string]any, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	secrets := map[string]map[string]string{}
	var spec map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			StringData map[string]string `yaml:"stringData"`
			Spec       struct {
				Plugin map[string]any `yaml:"plugin"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		switch doc.Kind {
		case "Secret":
			secrets[doc.Metadata.Name] = doc.StringData
		case "Middleware":
			if doc.Metadata.Name == middleware {
				spec = doc.Spec.Plugin
			}
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("no Middleware %q", middleware)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	pcMap := map[string]PluginConf{}
	if err := json.Unmarshal(data, &pcMap); err != nil {
		return nil, err
	}
	pc, ok := pcMap[plugin]
	if !ok {
		return nil, fmt.Errorf("no plugin %q in Middleware %q", plugin, middleware)
	}
	for key := range pc {
		if pc[key], err = loadSecretKeys(secrets, pc[key]); err != nil {
			return nil, err
		}
	}
	return pc, nil
}

func loadSecretKeys(secrets map[string]map[string]string, i any) (any, error) {
	var err error
	switch iv := i.(type) {
	case string:
		if !strings.HasPrefix(iv, "urn:k8s:secret:") {
			return iv, nil
		}
		parts := strings.Split(iv, ":")
		if len(parts) != 5 {
			return "", fmt.Errorf("malformed secret URN %q", iv)
		}
		v, ok := secrets[parts[3]][parts[4]]
		if !ok {
			return "", fmt.Errorf("key %q not found in secret %s", parts[4], parts[3])
		}
		return v, nil
	case []any:
		for i := range iv {
			if iv[i], err = loadSecretKeys(secrets, iv[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range iv {
			if iv[k], err = loadSecretKeys(secrets, iv[k]); err != nil {
				return nil, err
			}
		}
	}
	return i, nil
}

func pluginConf(cfg DynamicConfig, middleware, plugin string) (map[string]any, error) {
	if cfg.HTTP == nil || cfg.HTTP.Middlewares[middleware] == nil {
		return nil, fmt.Errorf("no middleware %q", middleware)
	}
	pc, ok := cfg.HTTP.Middlewares[middleware].Plugin[plugin]
	if !ok {
		return nil, fmt.Errorf("no plugin %q in middleware %q", plugin, middleware)
	}
	return pc, nil
}

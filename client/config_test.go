package client

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Manager = "127.0.0.1:9400"
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" if valid
	}{
		{"default", func(*Config) {}, ""},
		{"zero fields take defaults", func(c *Config) { *c = Config{Manager: "m:1"} }, ""},
		{"no manager", func(c *Config) { c.Manager = "" }, "Manager"},
		{"no port", func(c *Config) { c.Manager = "localhost" }, "Manager"},
		{"bad port", func(c *Config) { c.Manager = "localhost:http" }, "Manager"},
		{"port out of range", func(c *Config) { c.Manager = "localhost:70000" }, "Manager"},
		{"no host", func(c *Config) { c.Manager = ":9400" }, "Manager"},
		{"negative rpc timeout", func(c *Config) { c.RPCTimeout = -1 }, "RPCTimeout"},
		{"negative op timeout", func(c *Config) { c.OpTimeout = -1 }, "OpTimeout"},
		{"op shorter than rpc", func(c *Config) { c.OpTimeout = time.Second; c.RPCTimeout = 2 * time.Second }, "OpTimeout"},
		{"tiny buffer", func(c *Config) { c.WriteBuffer = 100 }, "WriteBuffer"},
		{"negative readahead", func(c *Config) { c.ReadAhead = -1 }, "ReadAhead"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %s", err, tc.field)
			}
		})
	}
}

func TestNewRejectsMalformedAddress(t *testing.T) {
	for _, addr := range []string{"", "no-port", "host:", "a b:1", "[::1"} {
		if c, err := New(Config{Manager: addr}); err == nil {
			c.Close()
			t.Errorf("New(%q) succeeded", addr)
		} else if !strings.Contains(err.Error(), "Manager") {
			t.Errorf("New(%q) = %v, want an error naming Manager", addr, err)
		}
	}
}

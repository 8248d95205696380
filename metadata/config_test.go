package metadata

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Dir = "/tmp/x"
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // substring naming the field; "" for valid
	}{
		{"defaults with dir", func(c *Config) {}, ""},
		{"in memory without dir", func(c *Config) { c.Dir, c.InMemory = "", true }, ""},
		{"no dir", func(c *Config) { c.Dir = "" }, "Config.Dir"},
		{"replication 0", func(c *Config) { c.Replication = 0 }, "Config.Replication"},
		{"replication 17", func(c *Config) { c.Replication = 17 }, "Config.Replication"},
		{"min replicas over replication", func(c *Config) { c.Replication, c.MinReplicas = 2, 3 }, "Config.MinReplicas"},
		{"min replicas negative", func(c *Config) { c.MinReplicas = -1 }, "Config.MinReplicas"},
		{"replication 1 default min", func(c *Config) { c.Replication = 1 }, ""},
		{"chunk size small", func(c *Config) { c.ChunkSize = 100 }, "Config.ChunkSize"},
		{"chunk size huge", func(c *Config) { c.ChunkSize = 2 << 30 }, "Config.ChunkSize"},
		{"dead after tiny", func(c *Config) { c.DeadAfter = time.Millisecond }, "Config.DeadAfter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestMinReplicasDefault(t *testing.T) {
	for _, tc := range []struct{ repl, min, want int }{{3, 0, 2}, {1, 0, 1}, {2, 0, 2}, {3, 3, 3}} {
		c := Config{Replication: tc.repl, MinReplicas: tc.min}
		if got := c.minReplicas(); got != tc.want {
			t.Errorf("Replication %d MinReplicas %d: minReplicas() = %d, want %d", tc.repl, tc.min, got, tc.want)
		}
	}
}

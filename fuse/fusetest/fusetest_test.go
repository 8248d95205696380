package fusetest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWhyUnavailable(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "fuse")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	found := func(string) (string, error) { return "/usr/bin/fusermount3", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	tests := []struct {
		name     string
		dev      string
		euid     int
		lookPath func(string) (string, error)
		want     string // substring of the reason; "" means available
	}{
		{"root", dev, 0, missing, ""},
		{"user with fusermount3", dev, 1000, found, ""},
		{"user without fusermount3", dev, 1000, missing, "no fusermount3"},
		{"no device", dev + "-missing", 0, found, "no " + dev + "-missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := whyUnavailable(tc.dev, tc.euid, tc.lookPath)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("whyUnavailable = %q, want %q", got, tc.want)
			}
		})
	}
}

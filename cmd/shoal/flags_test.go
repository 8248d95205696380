package main

import (
	"errors"
	"io"
	"slices"
	"testing"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"4096", 4096, false},
		{"64MiB", 64 << 20, false},
		{"1GiB", 1 << 30, false},
		{"2 TiB", 2 << 40, false},
		{"10MB", 10_000_000, false},
		{"8K", 8 << 10, false},
		{"0", 0, false},
		{"", 0, true},
		{"lots", 0, true},
		{"-1MiB", 0, true},
		{"1.5GiB", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tc := range cases {
		got, err := parseSize(tc.in)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	cases := []struct {
		args     []string
		wantJSON bool
		wantPos  []string
	}{
		{[]string{"/dir", "--json"}, true, []string{"/dir"}},
		{[]string{"--json", "/dir"}, true, []string{"/dir"}},
		{[]string{"a", "b", "--json", "c"}, true, []string{"a", "b", "c"}},
		{[]string{"a", "--", "--json"}, false, []string{"a", "--json"}},
		{[]string{"-", "/x"}, false, []string{"-", "/x"}},
	}
	for _, tc := range cases {
		fs := newFlagSet(env{stderr: io.Discard}, "t", "")
		j := fs.Bool("json", false, "")
		if err := parse(fs, tc.args); err != nil {
			t.Fatalf("parse(%q): %v", tc.args, err)
		}
		if *j != tc.wantJSON || !slices.Equal(fs.Args(), tc.wantPos) {
			t.Errorf("parse(%q): json=%v args=%q; want %v %q", tc.args, *j, fs.Args(), tc.wantJSON, tc.wantPos)
		}
	}
	fs := newFlagSet(env{stderr: io.Discard}, "t", "")
	if err := parse(fs, []string{"x", "--nope"}); !errors.Is(err, errUsage) {
		t.Errorf("parse of an unknown flag: %v, want errUsage", err)
	}
}

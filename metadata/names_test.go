package metadata

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		want error
	}{
		{"a", nil},
		{"hello world.txt", nil},
		{"...", nil},
		{".hidden", nil},
		{"ünïcödé", nil},
		{strings.Repeat("x", NameMax), nil},
		{"", errBadName},
		{".", errBadName},
		{"..", errBadName},
		{"a/b", errBadName},
		{"/", errBadName},
		{"nul\x00", errBadName},
		{strings.Repeat("x", NameMax+1), ErrNameTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateName(tc.name)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("validateName(%q) = %v, want %v", tc.name, err, tc.want)
			}
			if errors.Is(err, errBadName) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("a bad name is not ErrInvalid: %v", err)
			}
		})
	}
}

func FuzzValidateName(f *testing.F) {
	// Names are bytes: invalid UTF-8 is allowed, as in POSIX.
	for _, s := range []string{"", ".", "..", "a", "a/b", "x\x00", strings.Repeat("y", 256), "日本語", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := validateName(name)
		bad := name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00")
		switch {
		case bad && !errors.Is(err, errBadName):
			t.Fatalf("validateName(%q) = %v, want a bad-name error", name, err)
		case !bad && len(name) > NameMax && !errors.Is(err, ErrNameTooLong):
			t.Fatalf("validateName(%q) = %v, want ErrNameTooLong", name, err)
		case !bad && len(name) <= NameMax && err != nil:
			t.Fatalf("validateName(%q) = %v, want nil", name, err)
		}
	})
}

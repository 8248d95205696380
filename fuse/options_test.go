package fuse

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		want   string // in the error; "" means valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"no caching", func(o *Options) { o.AttrTimeout, o.EntryTimeout, o.NegativeTimeout = 0, 0, 0 }, ""},
		{"negative attr timeout", func(o *Options) { o.AttrTimeout = -time.Second }, "AttrTimeout"},
		{"negative entry timeout", func(o *Options) { o.EntryTimeout = -1 }, "EntryTimeout"},
		{"negative negative timeout", func(o *Options) { o.NegativeTimeout = -1 }, "NegativeTimeout"},
		{"negative unmount timeout", func(o *Options) { o.UnmountTimeout = -1 }, "UnmountTimeout"},
		{"tiny max write", func(o *Options) { o.MaxWrite = 100 }, "MaxWrite"},
		{"huge max write", func(o *Options) { o.MaxWrite = 4 << 20 }, "MaxWrite"},
		{"default max write", func(o *Options) { o.MaxWrite = 0 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.change(&o)
			err := o.Validate()
			if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

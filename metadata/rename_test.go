package metadata

import (
	"context"
	"strings"
	"testing"
)

// resolve looks a slash-separated path up from the root.
func resolve(t *testing.T, m *Manager, p string) (Attr, error) {
	t.Helper()
	a := Attr{Ino: RootIno}
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		var err error
		if a, err = m.Lookup(context.Background(), a.Ino, name); err != nil {
			return a, err
		}
	}
	return a, nil
}

// renameTree makes:
//
//	/a/f  /a/sub/g  /b/  /c/h  /x  /y  /xl (hard link to /x)
func renameTree(t *testing.T) (*Manager, map[string]Attr) {
	m, _ := newManager(t)
	tree := map[string]Attr{}
	mk := func(parent, name string, mode uint32) {
		tree[strings.TrimPrefix(parent+"/"+name, "/")] = mustCreate(t, m, tree[parent].Ino, name, mode)
	}
	tree[""] = Attr{Ino: RootIno}
	mk("", "a", ModeDir|0o755)
	mk("a", "f", 0o644)
	mk("a", "sub", ModeDir|0o755)
	mk("a/sub", "g", 0o644)
	mk("", "b", ModeDir|0o755)
	mk("", "c", ModeDir|0o755)
	mk("c", "h", 0o644)
	mk("", "x", 0o644)
	mk("", "y", 0o644)
	if _, _, err := m.Link(context.Background(), tree["x"].Ino, RootIno, "xl"); err != nil {
		t.Fatal(err)
	}
	return m, tree
}

func TestRename(t *testing.T) {
	type expect struct {
		path string
		is   string // tree key of the inode expected there; "" means absent
	}
	tests := []struct {
		name     string
		from, to string
		flags    uint32
		keepOpen bool
		want     error
		replaced string // tree key of the replaced inode
		removed  bool
		after    []expect
		nlink    map[string]uint32 // tree key -> nlink afterwards
	}{
		{name: "within a directory", from: "a/f", to: "a/f2",
			after: []expect{{"a/f2", "a/f"}, {"a/f", ""}}},
		{name: "file across directories", from: "a/f", to: "b/f",
			after: []expect{{"b/f", "a/f"}, {"a/f", ""}}, nlink: map[string]uint32{"a": 3, "b": 2}},
		{name: "directory across directories", from: "a/sub", to: "b/sub",
			after: []expect{{"b/sub/g", "a/sub/g"}, {"a/sub", ""}}, nlink: map[string]uint32{"a": 2, "b": 3, "": 5}},
		{name: "replace a file", from: "y", to: "a/f", replaced: "a/f", removed: true,
			after: []expect{{"a/f", "y"}, {"y", ""}}},
		{name: "replace a file kept open", from: "y", to: "a/f", keepOpen: true, replaced: "a/f",
			after: []expect{{"a/f", "y"}}, nlink: map[string]uint32{"a/f": 0}},
		{name: "replace a file with other links", from: "y", to: "xl", replaced: "x",
			after: []expect{{"xl", "y"}, {"x", "x"}}, nlink: map[string]uint32{"x": 1}},
		{name: "replace an empty directory", from: "c", to: "b", replaced: "b", removed: true,
			after: []expect{{"b/h", "c/h"}, {"c", ""}}, nlink: map[string]uint32{"": 4}},
		{name: "replace an empty directory elsewhere", from: "a/sub", to: "b", replaced: "b", removed: true,
			after: []expect{{"b/g", "a/sub/g"}, {"a/sub", ""}}, nlink: map[string]uint32{"": 5, "a": 2}},
		{name: "replace a non-empty directory", from: "b", to: "c", want: ErrNotEmpty},
		{name: "directory over a file", from: "b", to: "x", want: ErrNotDir},
		{name: "file over a directory", from: "x", to: "b", want: ErrIsDir},
		{name: "directory into its own subtree", from: "a", to: "a/sub/a", want: ErrLoop},
		{name: "directory into itself", from: "a", to: "a/a", want: ErrLoop},
		{name: "missing source", from: "nope", to: "b/nope", want: ErrNotFound},
		{name: "missing target directory", from: "x", to: "nodir/x", want: ErrNotFound},
		{name: "target parent is a file", from: "y", to: "x/y", want: ErrNotDir},
		{name: "bad target name", from: "x", to: "..", want: ErrInvalid},
		{name: "onto another link of the same inode", from: "x", to: "xl",
			after: []expect{{"x", "x"}, {"xl", "x"}}, nlink: map[string]uint32{"x": 2}},
		{name: "onto itself", from: "a/f", to: "a/f", after: []expect{{"a/f", "a/f"}}},
		{name: "noreplace over existing", from: "x", to: "y", flags: RenameNoReplace, want: ErrExists},
		{name: "noreplace to a free name", from: "x", to: "z", flags: RenameNoReplace,
			after: []expect{{"z", "x"}, {"x", ""}}},
		{name: "exchange two files", from: "x", to: "y", flags: RenameExchange,
			after: []expect{{"x", "y"}, {"y", "x"}}},
		{name: "exchange file and directory across parents", from: "a/sub", to: "c/h", flags: RenameExchange,
			after: []expect{{"a/sub", "c/h"}, {"c/h/g", "a/sub/g"}}, nlink: map[string]uint32{"a": 2, "c": 3}},
		{name: "exchange with a missing target", from: "x", to: "nope", flags: RenameExchange, want: ErrNotFound},
		{name: "exchange a directory into its subtree", from: "a", to: "a/sub/g", flags: RenameExchange, want: ErrLoop},
		{name: "both flags", from: "x", to: "y", flags: RenameExchange | RenameNoReplace, want: ErrInvalid},
		{name: "unknown flag", from: "x", to: "y", flags: 4, want: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, tree := renameTree(t)
			split := func(p string) (Ino, string) {
				dir, name := "", p
				if i := strings.LastIndex(p, "/"); i >= 0 {
					dir, name = p[:i], p[i+1:]
				}
				a, ok := tree[dir]
				if !ok {
					a = Attr{Ino: 99999}
					if dir == "x" {
						a = tree["x"]
					}
				}
				return a.Ino, name
			}
			op, on := split(tc.from)
			np, nn := split(tc.to)
			r, err := m.Rename(context.Background(), RenameArgs{
				OldParent: op, OldName: on, NewParent: np, NewName: nn, Flags: tc.flags, KeepOpen: tc.keepOpen,
			})
			wantErr(t, "rename", err, tc.want)
			if tc.want != nil {
				// Nothing moved.
				if a, err := resolve(t, m, tc.from); tree[tc.from].Ino != 0 && (err != nil || a.Ino != tree[tc.from].Ino) {
					t.Fatalf("source %s changed after a failed rename: %+v, %v", tc.from, a, err)
				}
				return
			}
			var wantReplaced Ino
			if tc.replaced != "" {
				wantReplaced = tree[tc.replaced].Ino
			}
			if r.Replaced != wantReplaced || r.ReplacedRemoved != tc.removed {
				t.Fatalf("Rename replaced %d removed=%v, want %d removed=%v", r.Replaced, r.ReplacedRemoved, wantReplaced, tc.removed)
			}
			// The reply's parents are what GetAttr returns now.
			if got := mustAttr(t, m, op); r.OldParent != got {
				t.Fatalf("Rename's old parent %+v, GetAttr %+v", r.OldParent, got)
			}
			if got := mustAttr(t, m, np); r.NewParent != got {
				t.Fatalf("Rename's new parent %+v, GetAttr %+v", r.NewParent, got)
			}
			for _, e := range tc.after {
				a, err := resolve(t, m, e.path)
				if e.is == "" {
					if !isNotFound(err) {
						t.Fatalf("%s: still there (%+v, %v)", e.path, a, err)
					}
					continue
				}
				if err != nil || a.Ino != tree[e.is].Ino {
					t.Fatalf("%s is %+v, %v; want inode %d (%s)", e.path, a, err, tree[e.is].Ino, e.is)
				}
			}
			for k, want := range tc.nlink {
				if got := mustAttr(t, m, tree[k].Ino).Nlink; got != want {
					t.Fatalf("nlink of %q = %d, want %d", k, got, want)
				}
			}
			if tc.replaced != "" && tc.removed {
				if _, err := m.GetAttr(context.Background(), tree[tc.replaced].Ino); !isNotFound(err) {
					t.Fatalf("replaced inode still there: %v", err)
				}
			}
		})
	}
}

// TestRenameParentPointer checks that a moved directory's parent pointer
// follows it, so that a later loop check sees the new shape.
func TestRenameParentPointer(t *testing.T) {
	ctx := context.Background()
	m, tree := renameTree(t)
	if _, err := m.Rename(ctx, RenameArgs{OldParent: tree["a"].Ino, OldName: "sub", NewParent: tree["b"].Ino, NewName: "sub"}); err != nil {
		t.Fatal(err)
	}
	if p := mustAttr(t, m, tree["a/sub"].Ino).Parent; p != tree["b"].Ino {
		t.Fatalf("parent %d, want %d", p, tree["b"].Ino)
	}
	// b is now an ancestor of sub: moving b into sub loops; moving a does not.
	_, err := m.Rename(ctx, RenameArgs{OldParent: RootIno, OldName: "b", NewParent: tree["a/sub"].Ino, NewName: "b"})
	wantErr(t, "b into b/sub", err, ErrLoop)
	_, err = m.Rename(ctx, RenameArgs{OldParent: RootIno, OldName: "a", NewParent: tree["a/sub"].Ino, NewName: "a"})
	wantErr(t, "a into b/sub", err, nil)
}

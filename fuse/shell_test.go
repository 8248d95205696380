package fuse_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shellCases are scripts a user runs in a shell. Each runs in a local
// temporary directory and in a directory of the mount (its working
// directory, $D), and the two trees must then be the same: names, types,
// modes, owners, sizes, link counts, contents and symlink targets, and
// the mtimes of regular files under mtimes (a path prefix) if set.
var shellCases = []struct {
	name   string
	needs  string // a command that must be installed, or ""
	mtimes string
	script string
}{
	{name: "cp and cat", script: `
		printf 'hello\nworld\n' > a
		cp a b
		cat a b > c
		mkdir d && cp a b c d/
		cp -r d e
		seq 1 100000 > big && cp big big2 && cmp big big2`},
	{name: "mkdir -p and rmdir", script: `
		mkdir -p x/y/z w/v
		rmdir x/y/z
		! rmdir x 2>/dev/null
		mkdir -m 0700 private
		ls -a x > listing-x
		ls -a > listing`},
	{name: "mv files and dirs", script: `
		echo one > a && echo two > b && mv a b
		mkdir d1 && echo x > d1/f && mv d1 d2
		mkdir -p e/sub && mv d2 e/sub/
		mkdir p q && echo y > p/g && mv -T p q
		mkdir full && touch full/keep && mkdir m && ! mv -T m full 2>/dev/null
		echo z > e/sub/d2/f2 && mv e/sub/d2/f2 .`},
	{name: "rm -r", script: `
		mkdir -p r/s/t && touch r/s/t/f r/g r/s/h && ln -s g r/l
		rm -r r
		mkdir -p k/l && rm -rf k
		! test -e r`},
	{name: "links", script: `
		echo target > t
		ln -s t sym && ln -s nowhere dangling && ln -s ../up up
		ln t hard && ln hard hard2
		readlink sym > readlink-out
		cat sym hard2 > through-links
		rm hard && mkdir d && ln t d/t3`},
	{name: "chmod", script: `
		touch f g h && mkdir d s
		chmod 0640 f && chmod u+x,g-r f
		chmod 4755 g && chmod 2750 h
		chmod 0700 d && chmod 1777 s
		chmod 000 h`},
	{name: "chown", script: `
		touch f g && mkdir d
		chown 65534:65534 f && chown :12345 g && chown 4242 d`},
	{name: "touch", mtimes: "t-", script: `
		touch -d '2001-02-03 04:05:06.789' t-a
		touch -m -d @1234567890 t-b
		touch new && touch t-a
		touch -d @1000000000 t-a
		touch -r t-b t-d`},
	{name: "truncate", script: `
		printf abcdefgh > f && truncate -s 100 f && truncate -s 3 f
		truncate -s 3M g && truncate -s 5 g
		printf 0123456789 > h && truncate -s -4 h && truncate -s +2 h
		: > f2 && echo new >> f2`},
	{name: "append", script: `
		echo a > f && echo b >> f && printf c >> f
		for i in 1 2 3 4 5 6 7 8 9 10; do seq 1 $i >> g; done`},
	{name: "dd", script: `
		dd if=/dev/zero of=f bs=1k count=3000 status=none
		printf XYZ | dd of=f bs=1 seek=1500000 conv=notrunc status=none
		dd if=f of=g bs=64k skip=10 count=5 status=none
		printf tail | dd of=f bs=1 seek=3072000 conv=notrunc status=none`},
	{name: "sparse", script: `
		printf end | dd of=s bs=1 seek=3000000 status=none
		truncate -s 5M t && printf mid | dd of=t bs=1 seek=2500000 conv=notrunc status=none
		cp --sparse=always s s2
		od -An -tx1 -j 2999990 -N 13 s > s-tail`},
	{name: "tar", mtimes: "out/", script: `
		mkdir -p src/a/b && seq 1 5000 > src/a/b/n && echo hi > src/x && ln -s x src/y && chmod 0600 src/x
		tar --sort=name --mtime=@1000000000 --owner=0 --group=0 --numeric-owner -cf t.tar src
		mkdir out && tar -xpf t.tar -C out
		tar -tvf t.tar > listing`},
	{name: "cp -a", mtimes: "dst/", script: `
		mkdir -p src/d && echo a > src/d/f && touch -d @1500000000 src/d/f && ln -s d/f src/l && chmod 0751 src/d
		cp -a src dst`},
	{name: "rsync -a", needs: "rsync", mtimes: "dst/", script: `
		mkdir -p src/d && seq 1 1000 > src/d/f && touch -d @1500000000 src/d/f && ln -s d/f src/l
		rsync -a src/ dst/
		echo changed >> src/d/f && touch -d @1600000000 src/d/f && rsync -a src/ dst/
		rsync -a --inplace src/d/f dst/d/f2 && rsync -a --delete src/ dst/`},
	{name: "git", needs: "git", script: `
		export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
		export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_SYSTEM=/dev/null
		git init -q -b main r && cd r
		echo hello > f && mkdir d && echo x > d/g
		git add f d && git -c user.name=t -c user.email=t@example.com commit -q -m first
		echo more >> f && git -c user.name=t -c user.email=t@example.com commit -q -am second
		git status --porcelain > ../status
		git log --format='%H %s' > ../log
		git fsck --no-progress > ../fsck 2>&1
		git mv f renamed && git status --porcelain > ../status2
		cd .. && rm -rf r/.git`},
	{name: "editor save", script: `
		printf 'version 1\n' > doc
		printf 'version 2\n' > .doc.tmp && mv -f .doc.tmp doc
		sed -i 's/2/3/' doc
		cp doc doc~ && printf 'version 4\n' > doc.new && mv doc.new doc`},
	{name: "noclobber is O_EXCL", script: `
		set -C
		echo a > f
		! (echo b > f) 2>/dev/null
		echo c >| f`},
	{name: "find and sort", script: `
		mkdir -p a/b/c && touch a/1 a/b/2 a/b/c/3
		find . -path ./found -prune -o -print | sort > found
		ls -laR a | grep -v '^total' | awk '{print $1, $2, $NF}' > lsR`},
}

func TestShell(t *testing.T) {
	c, mnt := mountCluster(t)
	local := t.TempDir()
	for _, tc := range shellCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needs != "" {
				if _, err := exec.LookPath(tc.needs); err != nil {
					t.Skipf("%s is not installed", tc.needs)
				}
			}
			dir := strings.ReplaceAll(tc.name, " ", "_")
			want := mkdir(t, join(local, dir))
			got := mkdir(t, join(mnt, dir))
			runScript(t, want, tc.script)
			runScript(t, got, tc.script)
			compareTrees(t, want, got, tc.mtimes)
		})
	}
	c.WaitHealthy()
}

// runScript runs script with sh -e in dir. The shell changes into dir
// itself: a child that chdirs into the mount between fork and exec can
// deadlock with the serve loop of its parent (see go-fuse's fs docs).
func runScript(t *testing.T, dir, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-ec", `cd "$D"`+"\n"+script)
	cmd.Env = append(os.Environ(), "D="+dir, "LC_ALL=C", "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script in %s: %v\n%s", dir, err, out)
	}
}

// fileInfo is what compareTrees compares of one path.
type fileInfo struct {
	typ    fs.FileMode
	perm   fs.FileMode // permission and set-id/sticky bits
	size   int64       // regular files and symlinks
	nlink  uint64
	uid    uint32
	gid    uint32
	sum    string // regular files
	target string // symlinks
	mtime  time.Time
}

func (f fileInfo) String() string {
	return fmt.Sprintf("%v%v size=%d nlink=%d owner=%d:%d sum=%.12s target=%q mtime=%v",
		f.typ, f.perm, f.size, f.nlink, f.uid, f.gid, f.sum, f.target, f.mtime)
}

func snapshot(t *testing.T, root, mtimes string) map[string]fileInfo {
	t.Helper()
	tree := make(map[string]fileInfo)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		fi := fileInfo{
			typ:   fs.FileMode(st.Mode) & fs.ModeType,
			nlink: uint64(st.Nlink),
			uid:   st.Uid,
			gid:   st.Gid,
		}
		fi.perm = fs.FileMode(st.Mode & 0o777)
		if st.Mode&syscall.S_ISUID != 0 {
			fi.perm |= fs.ModeSetuid
		}
		if st.Mode&syscall.S_ISGID != 0 {
			fi.perm |= fs.ModeSetgid
		}
		if st.Mode&syscall.S_ISVTX != 0 {
			fi.perm |= fs.ModeSticky
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			fi.typ = fs.ModeDir
		case syscall.S_IFLNK:
			fi.typ = fs.ModeSymlink
			fi.size = st.Size
			if fi.target, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFREG:
			fi.typ = 0
			fi.size = st.Size
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			fi.sum = hex.EncodeToString(sum[:])
			if mtimes != "" && strings.HasPrefix(rel, mtimes) {
				fi.mtime = time.Unix(st.Mtim.Unix())
			}
		}
		tree[rel] = fi
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return tree
}

func compareTrees(t *testing.T, want, got, mtimes string) {
	t.Helper()
	w, g := snapshot(t, want, mtimes), snapshot(t, got, mtimes)
	for _, p := range sortedKeys(w) {
		gi, ok := g[p]
		switch {
		case !ok:
			t.Errorf("%s: missing in the mount (local: %v)", p, w[p])
		case gi != w[p]:
			t.Errorf("%s differs:\n local: %v\n mount: %v", p, w[p], gi)
			if gi.typ.IsRegular() && gi.sum != w[p].sum && gi.size < 4096 && w[p].size < 4096 {
				wd, _ := os.ReadFile(filepath.Join(want, p))
				gd, _ := os.ReadFile(filepath.Join(got, p))
				t.Errorf("%s content:\n local:\n%s\n mount:\n%s", p, wd, gd)
			}
		}
	}
	for _, p := range sortedKeys(g) {
		if _, ok := w[p]; !ok {
			t.Errorf("%s: in the mount but not local: %v", p, g[p])
		}
	}
}

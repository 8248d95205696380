package fuse_test

import (
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixExcluded lists the go-fuse posixtest cases a shoal mount does
// not run, each with its reason.
var posixExcluded = map[string]string{
	// Both descriptors belong to this process, and POSIX record locks
	// are per process: ext4 lets the second lock succeed too. (shoal
	// leaves locks to the kernel, so they work within one mount.)
	"FcntlFlockLocksFile": "fails on ext4 as well: both locks are taken by one process, which POSIX locks never refuse",
	"XAttr":               "shoal stores no extended attributes (the manager has none): every xattr call fails with EOPNOTSUPP, as on a filesystem without xattr support",
	"XAttrLarge":          "shoal stores no extended attributes (the manager has none): every xattr call fails with EOPNOTSUPP, as on a filesystem without xattr support",
}

// TestPosix runs go-fuse's POSIX conformance suite against a shoal
// mount, each case in its own directory.
func TestPosix(t *testing.T) {
	c, mnt := mountCluster(t)
	for _, name := range sortedKeys(posixtest.All) {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixExcluded[name]; ok {
				t.Skip(why)
			}
			posixtest.All[name](t, mkdir(t, join(mnt, name)))
		})
	}
	c.WaitHealthy()
}

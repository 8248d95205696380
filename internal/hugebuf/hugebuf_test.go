package hugebuf

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

const mib = 1 << 20

func TestNewRejectsUnevenSizes(t *testing.T) {
	for _, c := range []struct{ size, slab int }{{0, 2 * mib}, {mib, mib}, {3 * mib, 4 * mib}, {mib, 3 * mib}} {
		if _, err := New(c.size, c.slab, 8*mib); err == nil {
			t.Errorf("New(%d, %d): no error", c.size, c.slab)
		}
	}
}

func TestBuffersAreDistinctAlignedAndLimited(t *testing.T) {
	p, err := New(mib, 4*mib, 8*mib)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var bufs [][]byte
	for i := range 8 {
		b := p.Get()
		if len(b) != mib || cap(b) != mib {
			t.Fatalf("buffer %d: len %d cap %d, want %d", i, len(b), cap(b), mib)
		}
		if at := uintptr(unsafe.Pointer(&b[0])); at%mib != 0 {
			t.Fatalf("buffer %d at %#x: not aligned to its size", i, at)
		}
		for j := range b {
			b[j] = byte(i)
		}
		bufs = append(bufs, b)
	}
	if b := p.Get(); b != nil {
		t.Fatalf("a ninth buffer past the 8 MiB limit")
	}
	for i, b := range bufs { // no two overlap: each kept its own fill
		for j := 0; j < len(b); j += 4096 {
			if b[j] != byte(i) {
				t.Fatalf("buffer %d byte %d = %d: another buffer wrote it", i, j, b[j])
			}
		}
	}
	if mapped, out := p.Stats(); mapped != 8*mib || out != 8 {
		t.Fatalf("Stats = %d mapped, %d out; want %d, 8", mapped, out, 8*mib)
	}

	if p.Put(make([]byte, mib)) {
		t.Fatal("Put took a buffer of the heap")
	}
	if !p.Put(bufs[3][:10]) {
		t.Fatal("Put refused one of its buffers, resliced")
	}
	b := p.Get()
	if &b[0] != &bufs[3][0] || len(b) != mib {
		t.Fatalf("Get after Put: not the buffer given back, at its full length")
	}
}

func TestCloseWaitsForBuffers(t *testing.T) {
	p, err := New(mib, 2*mib, 2*mib)
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Get(), p.Get()
	p.Put(a)
	p.Close()
	if p.Get() != nil {
		t.Fatal("Get after Close returned a buffer")
	}
	b[0] = 1 // still mapped: b is out
	if mapped, out := p.Stats(); mapped != 2*mib || out != 1 {
		t.Fatalf("after Close with a buffer out: Stats = %d, %d; want %d, 1", mapped, out, 2*mib)
	}
	if !p.Put(b) {
		t.Fatal("Put after Close refused the last buffer")
	}
	if mapped, out := p.Stats(); mapped != 0 || out != 0 {
		t.Fatalf("after the last Put: Stats = %d, %d; want 0, 0", mapped, out)
	}
}

// TestHugePages checks the point of the package: the kernel backs a
// touched slab with transparent huge pages (where it offers them).
func TestHugePages(t *testing.T) {
	if thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || strings.Contains(string(thp), "[never]") {
		t.Skipf("transparent huge pages are off here (%q, %v)", thp, err)
	}
	p, err := New(mib, 4*mib, 4*mib)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var first uintptr
	for range 4 {
		b := p.Get()
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		if first == 0 {
			first = uintptr(unsafe.Pointer(&b[0]))
		}
	}
	huge, err := anonHugeKiB(first)
	if err != nil {
		t.Fatal(err)
	}
	if huge == 0 {
		t.Fatalf("the slab at %#x has no huge pages", first)
	}
	t.Logf("AnonHugePages of the slab's mapping: %d kB", huge)
}

// anonHugeKiB returns the AnonHugePages of the mapping holding addr, from
// /proc/self/smaps.
func anonHugeKiB(addr uintptr) (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = addr >= lo && addr < hi
			continue
		}
		var kb int
		if in {
			if n, _ := fmt.Sscanf(line, "AnonHugePages: %d kB", &kb); n == 1 {
				return kb, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no mapping at %#x in /proc/self/smaps", addr)
}

package client

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it starts: clients, files' goroutines, fake
// servers and their connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

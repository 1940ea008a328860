package redis

import (
	"testing"

	"github.com/careq/gateway/internal/adapttest"

	// The handlers the golden files reference.
	_ "github.com/careq/gateway/modules/idempotency"
	_ "github.com/careq/gateway/modules/ratelimit"
)

func TestAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/adapt")
}

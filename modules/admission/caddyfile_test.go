package admission

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"adaptive with classes", `careq_admission queues {
			adaptive 4 500 16
			class staff 30% {
				when scope queue:call
				when user staff-* method post put
			}
			class display
			wait 100ms
			retry_after 2
		}`, ""},
		{"fixed", `careq_admission q { 
			limit 8
			class all
		}`, ""},
		{"per replica", `careq_admission q {
			limit 8
			per_replica
			class all
		}`, ""},
		{"per_replica twice", `careq_admission q {
			limit 8
			per_replica
			per_replica
			class all
		}`, "per_replica already specified"},
		{"per_replica with an argument", `careq_admission q {
			limit 8
			per_replica yes
			class all
		}`, "wrong argument count"},
		{"no zone", `careq_admission { 
			limit 8
		}`, "wrong argument count"},
		{"no limit", `careq_admission q {
			class all
		}`, "limit or adaptive is required"},
		{"both limits", `careq_admission q {
			limit 8
			adaptive 1 9
			class all
		}`, "cannot both"},
		{"no class", `careq_admission q {
			limit 8
		}`, "at least one class"},
		{"bad reserve", `careq_admission q {
			limit 8
			class a 30
		}`, "invalid reserve"},
		{"reserves over 100", `careq_admission q {
			limit 8
			class a 60%
			class b 50%
		}`, "add up to 110%"},
		{"duplicate class", `careq_admission q {
			limit 8
			class a
			class a
		}`, "class 'a' already specified"},
		{"min above max", `careq_admission q {
			adaptive 9 4
			class a
		}`, "min 9 is above max 4"},
		{"condition without values", `careq_admission q {
			limit 8
			class a {
				when scope method GET
			}
		}`, "condition 'scope' needs at least one value"},
		{"unknown condition", `careq_admission q {
			limit 8
			class a {
				when header X
			}
		}`, "invalid condition 'header'"},
		{"empty when", `careq_admission q {
			limit 8
			class a {
				when
			}
		}`, "when needs a condition"},
		{"unknown subdirective", `careq_admission q {
			limit 8
			class a
			queue 100
		}`, "unrecognized subdirective 'queue'"},
		{"bad wait", `careq_admission q {
			limit 8
			class a
			wait soon
		}`, "invalid wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("UnmarshalCaddyfile(%q) = %v, want no error", tt.in, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("UnmarshalCaddyfile(%q) = %v, want an error containing %q", tt.in, err, tt.err)
			}
		})
	}
}

func TestAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/adapt")
}

package admission

import (
	"fmt"
	"path"
	"time"

	"github.com/careq/gateway/internal/cfgparse"
)

// Validate rejects settings that cannot work.
func (h *Handler) Validate() error {
	switch {
	case !cfgparse.ValidName(h.Zone):
		return fmt.Errorf("zone must be 1 to 64 letters, digits, '.', '_' or '-', not %q", h.Zone)
	case (h.Limit == 0) == (h.Adaptive == nil):
		return fmt.Errorf("exactly one of limit and adaptive must be set")
	case h.Limit < 0 || h.Limit > maxLimit:
		return fmt.Errorf("limit must be from 1 to %d, not %d", maxLimit, h.Limit)
	case len(h.Classes) == 0 || len(h.Classes) > maxClasses:
		return fmt.Errorf("classes must list 1 to %d classes, not %d", maxClasses, len(h.Classes))
	case h.Wait < 0 || time.Duration(h.Wait) > maxWait:
		return fmt.Errorf("wait must be from 0 to %s, not %s", maxWait, time.Duration(h.Wait))
	case h.RetryAfter < 1:
		return fmt.Errorf("retry_after must be at least 1 second, not %d", h.RetryAfter)
	}
	if a := h.Adaptive; a != nil {
		if a.Min < 1 || a.Max > maxLimit || a.Min > a.Max || a.Initial < a.Min || a.Initial > a.Max {
			return fmt.Errorf("adaptive must have 1 <= min (%d) <= initial (%d) <= max (%d) <= %d", a.Min, a.Initial, a.Max, maxLimit)
		}
	}
	sum := 0
	seen := make(map[string]bool, len(h.Classes))
	for _, c := range h.Classes {
		if !cfgparse.ValidName(c.Name) {
			return fmt.Errorf("classes: name must be 1 to 64 letters, digits, '.', '_' or '-', not %q", c.Name)
		}
		if seen[c.Name] {
			return fmt.Errorf("classes: name %q must be unique", c.Name)
		}
		seen[c.Name] = true
		if c.Reserve < 0 || c.Reserve > 100 {
			return fmt.Errorf("classes: reserve of %q must be from 0 to 100 percent, not %d", c.Name, c.Reserve)
		}
		sum += c.Reserve
		for _, w := range c.When {
			for _, p := range append(append([]string{}, w.Path...), w.User...) {
				if _, err := path.Match(p, ""); err != nil {
					return fmt.Errorf("classes: pattern %q of %q must be a valid path.Match pattern: %v", p, c.Name, err)
				}
			}
		}
	}
	if sum > 100 {
		return fmt.Errorf("classes: reserves must add up to at most 100 percent, not %d", sum)
	}
	return nil
}

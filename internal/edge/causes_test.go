package edge

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestCauseTableIsConsistent(t *testing.T) {
	if CauseTable[0].Cause != Other {
		t.Fatalf("row 0 = %q, want %q (the metrics' row 0)", CauseTable[0].Cause, Other)
	}
	slug := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	for i, ci := range CauseTable {
		if j := causeIndex[ci.Cause]; j != i {
			t.Errorf("cause %q is listed twice (rows %d and %d)", ci.Cause, j, i)
		}
		if !slug.MatchString(string(ci.Cause)) || ci.Title == "" || ci.Detail == "" {
			t.Errorf("row %d %+v: want a slug, a title and a detail", i, ci)
		}
		if TitleOf(ci.Cause) != ci.Title || DetailOf(ci.Cause) != ci.Detail {
			t.Errorf("TitleOf/DetailOf(%q) disagree with the table", ci.Cause)
		}
		for _, st := range []int{ci.Status, ci.AlsoStatus} {
			if st == 0 {
				continue
			}
			var want []string
			switch st {
			case 401, 403:
				want = []string{"WWW-Authenticate"}
			case 405:
				want = []string{"Allow"}
			case 429, 503:
				want = []string{"Retry-After"}
			}
			for _, h := range want {
				if !contains(ci.Headers, h) {
					t.Errorf("cause %q answered with %d does not list the %s header its status requires", ci.Cause, st, h)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestCauseTableMatchesREADMEs reads the error table of every module README
// (and careq_problem's table of causes): each cause named there is a row of
// CauseTable answered with the status the README gives it, and every row of
// the table is documented in modules/problem/README.md.
func TestCauseTableMatchesREADMEs(t *testing.T) {
	readmes, err := filepath.Glob("../../modules/*/README.md")
	if err != nil || len(readmes) == 0 {
		t.Fatalf("no module READMEs found: %v", err)
	}
	firstCode := regexp.MustCompile("^`([a-z0-9-]+)`")
	leadingStatus := regexp.MustCompile(`^(\d{3})\b`)
	documented := map[Cause]bool{}
	rows := 0
	for _, path := range readmes {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		inTable, causeCol, statusCol := false, -1, -1
		section := ""
		line := 0
		for sc.Scan() {
			line++
			text := sc.Text()
			if strings.HasPrefix(text, "## ") {
				section = strings.TrimPrefix(text, "## ")
				inTable = false
				continue
			}
			if section != "Errors" && section != "Causes" {
				continue
			}
			if !strings.HasPrefix(text, "|") {
				inTable = false
				continue
			}
			cells := strings.Split(strings.Trim(text, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			if !inTable {
				inTable, causeCol, statusCol = true, -1, -1
				for i, c := range cells {
					switch {
					case strings.HasPrefix(c, "Cause"):
						causeCol = i
					case c == "Status":
						statusCol = i
					}
				}
				continue
			}
			if causeCol < 0 || statusCol < 0 || causeCol >= len(cells) || strings.HasPrefix(cells[0], "---") {
				continue
			}
			m := firstCode.FindStringSubmatch(cells[causeCol])
			if m == nil {
				t.Errorf("%s:%d: no cause in %q", path, line, cells[causeCol])
				continue
			}
			rows++
			c := Cause(m[1])
			ci, ok := Info(c)
			if !ok {
				t.Errorf("%s:%d: cause %q is not in the cause table", path, line, c)
				continue
			}
			if strings.HasSuffix(filepath.Dir(path), "problem") && section == "Causes" {
				documented[c] = true
			}
			sm := leadingStatus.FindStringSubmatch(cells[statusCol])
			if sm == nil {
				t.Errorf("%s:%d: no status in %q", path, line, cells[statusCol])
				continue
			}
			st, _ := strconv.Atoi(sm[1])
			if !ci.Allows(st) {
				t.Errorf("%s:%d: cause %q with status %d; the cause table answers it with %d", path, line, c, st, ci.Status)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if rows < 30 {
		t.Fatalf("read only %d cause rows from the READMEs; the table format changed?", rows)
	}
	for _, ci := range CauseTable {
		if ci.Cause != Other && !documented[ci.Cause] {
			t.Errorf("cause %q is not in modules/problem/README.md's table of causes", ci.Cause)
		}
	}
}

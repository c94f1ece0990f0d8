package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a configuration file, located by line and key path.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Key is the dotted path of the offending key, e.g.
	// "services[1].real_servers[0].port"; empty for file-level problems.
	Key string
	Msg string
}

// Error formats the problem as "file:line: key: msg", the form compilers use
// so that editors can jump to it.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one configuration, sorted by line.
// Load and Parse return it (as error) whenever the configuration is invalid.
type ErrorList struct {
	Errors []*Error
}

// Error prints one line per problem.
func (l *ErrorList) Error() string {
	lines := make([]string, len(l.Errors))
	for i, e := range l.Errors {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As reach the individual *Error values.
func (l *ErrorList) Unwrap() []error {
	out := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		out[i] = e
	}
	return out
}

// finish sorts the problems by position and drops exact duplicates, which
// arise when a service-level health check is validated again as part of each
// real server's effective check.
func (l *ErrorList) finish() {
	sort.SliceStable(l.Errors, func(i, j int) bool {
		a, b := l.Errors[i], l.Errors[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	seen := make(map[Error]bool, len(l.Errors))
	out := l.Errors[:0]
	for _, e := range l.Errors {
		if seen[*e] {
			continue
		}
		seen[*e] = true
		out = append(out, e)
	}
	l.Errors = out
}

// closest returns the candidate most similar to word when it is close enough
// to be a plausible typo, or "".
func closest(word string, candidates []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	w := norm(word)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(w, norm(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	// Short words are close to many others; only suggest near-exact matches.
	limit := max(2, len(word)/3)
	if len(word) <= 4 {
		limit = 1
	}
	if bestDist >= 0 && bestDist <= limit && bestDist < len(word) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package migrate

import (
	"sort"
	"strconv"
	"strings"

	"github.com/govs/govs/config"
)

// Severity says whether a Message means that something was not converted.
type Severity int

const (
	// Error: something in the input is not in the output, or the output
	// needs editing before govsd takes it.
	Error Severity = iota
	// Note: converted, or deliberately left out (it stays keepalived's),
	// with a difference worth knowing.
	Note
	// Warning: about the conversion itself (a default it had to pick).
	Warning
)

// Message is one problem or remark, located in the input.
type Message struct {
	File     string
	Line     int // 0: the whole file, or the command line
	Severity Severity
	Text     string
}

// String formats the message as "file:line: text", with "note: " or
// "warning: " before the text for those severities.
func (m Message) String() string {
	var b strings.Builder
	b.WriteString(m.File)
	if m.Line > 0 {
		b.WriteString(":" + strconv.Itoa(m.Line))
	}
	b.WriteString(": ")
	switch m.Severity {
	case Note:
		b.WriteString("note: ")
	case Warning:
		b.WriteString("warning: ")
	}
	b.WriteString(m.Text)
	return b.String()
}

// Options tune a conversion.
type Options struct {
	// Interfaces become director.interfaces. When empty, keepalived's
	// vrrp_instance interfaces are used, else eth0, with a warning.
	Interfaces []string
}

// Result is a conversion: the govs.yaml and what to know about it.
type Result struct {
	YAML     []byte
	Messages []Message
	// Invalid holds config.Parse's complaints about YAML, which are
	// expected when Failed (a fwmark service without its match, ...)
	// and a bug of the converter otherwise.
	Invalid error
}

// Failed reports whether anything could not be converted.
func (r *Result) Failed() bool {
	return r.hasErrors() || r.Invalid != nil
}

func (r *Result) hasErrors() bool {
	for _, m := range r.Messages {
		if m.Severity == Error {
			return true
		}
	}
	return false
}

// reporter collects messages.
type reporter struct {
	msgs []Message
}

// add records m once: a group's members share their virtual server's
// keywords, whose messages would otherwise repeat.
func (r *reporter) add(m Message) {
	for _, o := range r.msgs {
		if o == m {
			return
		}
	}
	r.msgs = append(r.msgs, m)
}

func (r *reporter) errorf(file string, line int, format string, args ...any) {
	r.add(Message{File: file, Line: line, Severity: Error, Text: sprintf(format, args...)})
}

func (r *reporter) notef(file string, line int, format string, args ...any) {
	r.add(Message{File: file, Line: line, Severity: Note, Text: sprintf(format, args...)})
}

func (r *reporter) warnf(file string, line int, format string, args ...any) {
	r.add(Message{File: file, Line: line, Severity: Warning, Text: sprintf(format, args...)})
}

// finish renders doc, validates it and builds the Result.
func finish(doc *document, rep *reporter, outName string) *Result {
	sort.SliceStable(rep.msgs, func(i, j int) bool {
		a, b := rep.msgs[i], rep.msgs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	res := &Result{YAML: doc.render(), Messages: rep.msgs}
	if _, err := config.Parse(res.YAML, outName); err != nil {
		res.Invalid = err
	}
	return res
}

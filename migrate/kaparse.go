package migrate

import (
	"os"
	"path/filepath"
	"strings"
)

// kaNode is one keepalived statement: a keyword, its arguments and, for a
// block, its statements.
type kaNode struct {
	key      string
	args     []string
	file     string
	line     int
	block    bool
	children []*kaNode
}

// kaParser builds the statement tree of keepalived.conf and the files it
// includes, as keepalived does: words separated by blanks, '#' or '!'
// comments, quoted strings, '{' and '}' delimiting blocks.
type kaParser struct {
	rep   *reporter
	root  *kaNode
	stack []*kaNode
	last  *kaNode // the statement a following '{' opens
	depth int
}

func parseKeepalived(path string, data []byte, rep *reporter) *kaNode {
	p := &kaParser{rep: rep, root: &kaNode{block: true}}
	p.stack = []*kaNode{p.root}
	p.feed(path, data)
	for len(p.stack) > 1 {
		n := p.stack[len(p.stack)-1]
		rep.errorf(n.file, n.line, "%s: block not closed ('}' missing)", n.key)
		p.stack = p.stack[:len(p.stack)-1]
	}
	return p.root
}

func (p *kaParser) feed(file string, data []byte) {
	for i, text := range strings.Split(string(data), "\n") {
		num := i + 1
		words, ok := splitKeepalivedLine(strings.TrimRight(text, "\r"))
		if !ok {
			p.rep.errorf(file, num, "unterminated quoted string")
			continue
		}
		if len(words) == 0 {
			continue
		}
		w0 := words[0]
		switch {
		case strings.HasPrefix(w0, "@"):
			p.rep.errorf(file, num, "conditional configuration (%s) is not converted: resolve it for this director first", w0)
			continue
		case strings.HasPrefix(w0, "$") && strings.Contains(w0, "="):
			p.rep.errorf(file, num, "parameter definitions ($NAME=) are not converted: substitute them first")
			continue
		case strings.HasPrefix(w0, "include"):
			switch w0 {
			case "include", "includer", "includem", "includew", "includeb", "includea":
				p.include(file, num, words)
				continue
			}
		}
		p.statementLine(file, num, words)
	}
}

func (p *kaParser) include(file string, num int, words []string) {
	if len(words) != 2 {
		p.rep.errorf(file, num, "%s takes one file name", words[0])
		return
	}
	if p.depth >= 8 {
		p.rep.errorf(file, num, "includes nested too deep")
		return
	}
	pattern := words[1]
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(file), pattern)
	}
	matches, err := filepath.Glob(pattern)
	if err != nil || len(matches) == 0 {
		p.rep.errorf(file, num, "%s %s: no such file", words[0], words[1])
		return
	}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			p.rep.errorf(file, num, "%v", err)
			continue
		}
		p.depth++
		p.feed(m, data)
		p.depth--
	}
}

func (p *kaParser) statementLine(file string, num int, words []string) {
	var cur *kaNode
	for _, w := range words {
		switch w {
		case "{":
			target := cur
			if target == nil {
				target = p.last
			}
			if target == nil || target.block {
				p.rep.errorf(file, num, "'{' without a keyword")
				continue
			}
			target.block = true
			p.stack = append(p.stack, target)
			cur, p.last = nil, nil
		case "}":
			if len(p.stack) == 1 {
				p.rep.errorf(file, num, "'}' without a block to close")
				continue
			}
			p.stack = p.stack[:len(p.stack)-1]
			cur, p.last = nil, nil
		default:
			if cur == nil {
				cur = &kaNode{key: w, file: file, line: num}
				parent := p.stack[len(p.stack)-1]
				parent.children = append(parent.children, cur)
				p.last = cur
			} else {
				cur.args = append(cur.args, w)
			}
		}
	}
}

// splitKeepalivedLine splits a line into words: blanks separate, '#' and
// '!' start a comment, quotes (" or ') group, braces are words of their own.
func splitKeepalivedLine(s string) ([]string, bool) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if quote != 0 {
			switch {
			case ch == quote:
				quote = 0
			case ch == '\\' && i+1 < len(s):
				i++
				cur.WriteByte(unescape(s[i]))
			default:
				cur.WriteByte(ch)
			}
			continue
		}
		switch ch {
		case ' ', '\t':
			flush()
		case '#', '!':
			flush()
			return words, true
		case '"', '\'':
			quote, inWord = ch, true
		case '{', '}':
			flush()
			words = append(words, string(ch))
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, false
	}
	flush()
	return words, true
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

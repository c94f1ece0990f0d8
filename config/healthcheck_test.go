package config

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/govs/govs/healthcheck"
)

// TestCheckSettings: a settings block is parsed key by key after each
// setting's kind of value, including kinds no built-in checker uses yet;
// refused values are reported and left out.
func TestCheckSettings(t *testing.T) {
	settings := []healthcheck.Setting{
		{Name: "s", Kind: healthcheck.String, NonEmpty: true},
		{Name: "l", Kind: healthcheck.Strings, NonEmpty: true},
		{Name: "i", Kind: healthcheck.Int, Min: 1, Max: 9},
		{Name: "is", Kind: healthcheck.Ints, Min: 1, Max: 9},
		{Name: "b", Kind: healthcheck.Bool},
		{Name: "r", Kind: healthcheck.String, Required: true},
	}
	for _, tc := range []struct {
		in   string
		want healthcheck.Values
		errs []string
	}{
		{"{s: x, l: [a, ''], i: 3, is: [1, 9], b: true, r: 5}",
			healthcheck.Values{"s": "x", "l": []string{"a", ""}, "i": int64(3), "is": []int64{1, 9}, "b": true, "r": "5"}, nil},
		{"{s: '', l: ['', x], i: 10, is: [1, 0], b: x}", healthcheck.Values{}, []string{
			"t.r: missing (required)", "t.s: must not be empty", "t.l[0]: must not be empty",
			"t.i: 10 is out of range 1..9", "t.is[1]: 0 is out of range 1..9", `t.b: want true or false, got "x"`}},
		{"{l: x, is: {}, b: 1, r: [x]}", healthcheck.Values{}, []string{
			"t.l: want a list, got \"x\"", "t.is: want a list, got a mapping", "t.b: want true or false, got 1", "t.r: want a string, got a list"}},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.in), &doc); err != nil {
			t.Fatal(err)
		}
		p := &parser{file: "f"}
		m := p.mapping(doc.Content[0], "t", "s", "l", "i", "is", "b", "r")
		got := p.settings(m, settings)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: values %#v, want %#v", tc.in, got, tc.want)
		}
		var errs []string
		for _, e := range p.errs.Errors {
			errs = append(errs, e.Key+": "+e.Msg)
		}
		for _, w := range tc.errs {
			if !strings.Contains(strings.Join(errs, "\n"), w) {
				t.Errorf("%s: no error %q in %q", tc.in, w, errs)
			}
		}
		if len(errs) != len(tc.errs) {
			t.Errorf("%s: errors %q, want %q", tc.in, errs, tc.errs)
		}
	}
}

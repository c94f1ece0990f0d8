package daemon

import (
	"net/netip"
	"testing"

	"github.com/govs/govs/config"
	"github.com/govs/govs/dataplane"
)

func testService(onFailure config.OnFailure, sorry *config.SorryServer) *service {
	return &service{
		spec: dataplane.ServiceSpec{Name: "web", VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Proto: 6,
			Dests: []dataplane.DestSpec{
				{Addr: netip.MustParseAddr("198.18.1.1"), Port: 8080, Weight: 3},
				{Addr: netip.MustParseAddr("198.18.1.2"), Port: 8080, Weight: 1},
			}},
		checks:    make([]config.HealthCheck, 2),
		onFailure: onFailure,
		sorry:     sorry,
	}
}

func weights(sp dataplane.ServiceSpec) map[string]int {
	out := map[string]int{}
	for _, d := range sp.Dests {
		out[netip.AddrPortFrom(d.Addr, d.Port).String()] = d.Weight
	}
	return out
}

// TestEffectiveSpecs: health state turns into weights exactly as on_failure
// and sorry_server say, and a recovered server gets its configured weight.
func TestEffectiveSpecs(t *testing.T) {
	sorry := &config.SorryServer{Address: netip.MustParseAddr("198.18.1.200"), Port: 8080}
	cases := []struct {
		name      string
		onFailure config.OnFailure
		down      []string
		want      map[string]int
	}{
		{"all up", config.OnFailureQuiesce, nil, map[string]int{"198.18.1.1:8080": 3, "198.18.1.2:8080": 1}},
		{"quiesce", config.OnFailureQuiesce, []string{"web/198.18.1.1:8080"}, map[string]int{"198.18.1.1:8080": 0, "198.18.1.2:8080": 1}},
		{"remove", config.OnFailureRemove, []string{"web/198.18.1.1:8080"}, map[string]int{"198.18.1.2:8080": 1}},
		{"all down: sorry server", config.OnFailureQuiesce, []string{"web/198.18.1.1:8080", "web/198.18.1.2:8080"},
			map[string]int{"198.18.1.1:8080": 0, "198.18.1.2:8080": 0, "198.18.1.200:8080": 1}},
		{"all down, removed: sorry server alone", config.OnFailureRemove, []string{"web/198.18.1.1:8080", "web/198.18.1.2:8080"},
			map[string]int{"198.18.1.200:8080": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &Daemon{up: map[string]bool{}, services: []*service{testService(c.onFailure, sorry)}}
			for _, k := range c.down {
				d.up[k] = false
			}
			got := weights(d.effectiveSpecs()[0])
			if len(got) != len(c.want) {
				t.Fatalf("weights %v, want %v", got, c.want)
			}
			for k, w := range c.want {
				if got[k] != w {
					t.Errorf("weights %v, want %v", got, c.want)
					break
				}
			}
			// Recovery restores the configured weights.
			for _, k := range c.down {
				d.up[k] = true
			}
			if got := weights(d.effectiveSpecs()[0]); got["198.18.1.1:8080"] != 3 || got["198.18.1.2:8080"] != 1 || len(got) != 2 {
				t.Errorf("after recovery: %v, want the configured 3 and 1", got)
			}
		})
	}
}

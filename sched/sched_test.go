package sched

import (
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestNamesAreTheFourteenIPVSSchedulers(t *testing.T) {
	if got := Names(); !slices.Equal(got, allNames) {
		t.Fatalf("Names() = %v, want %v", got, allNames)
	}
	for _, n := range allNames {
		if _, err := New(n, 0); err != nil {
			t.Errorf("New(%q): %v", n, err)
		}
	}
	if _, err := New("nope", 0); err == nil {
		t.Error("New(nope) succeeded")
	}
}

func TestParseFlags(t *testing.T) {
	f, err := ParseFlags([]string{"mh-fallback", "mh-port"})
	if err != nil || f != FlagFallback|FlagPort {
		t.Fatalf("ParseFlags = %v, %v", f, err)
	}
	if got := f.Names("sh"); !slices.Equal(got, []string{"sh-fallback", "sh-port"}) {
		t.Errorf("Names(sh) = %v", got)
	}
	if _, err := ParseFlags([]string{"bogus"}); err == nil || err.Error() != `unknown scheduler flag "bogus" (valid: sh-fallback, sh-port, mh-fallback, mh-port)` {
		t.Errorf("ParseFlags(bogus): %v", err)
	}
	for names, want := range map[string]Flags{"sh-fallback": FlagFallback, "sh-port": FlagPort, "flag-1": FlagFallback, "flag-2": FlagPort, "flag-3": 0, "mh-port,flag-1": FlagFallback | FlagPort} {
		if got, err := ParseFlags(strings.Split(names, ",")); err != nil || got != want {
			t.Errorf("ParseFlags(%s) = %v, %v; want %v", names, got, err, want)
		}
	}
	if got := FlagPort.Names("mh"); !slices.Equal(got, []string{"mh-port"}) {
		t.Errorf("Names(mh) = %v", got)
	}
	if got := FlagFallback.Names("wlc"); !slices.Equal(got, []string{"sh-fallback"}) {
		t.Errorf("Names(wlc) = %v", got)
	}
	if got := Flags(0).Names("sh"); got != nil {
		t.Errorf("no flags: %v", got)
	}
}

func TestNamesListNewSchedulersLast(t *testing.T) {
	Register("zz-test", func(Flags) Scheduler { return &roundRobin{last: -1} })
	defer func() {
		registryMu.Lock()
		delete(registry, "zz-test")
		registryMu.Unlock()
	}()
	if got := Names(); len(got) != len(allNames)+1 || got[len(got)-1] != "zz-test" {
		t.Errorf("Names() = %v", got)
	}
}

func TestOverloadHysteresis(t *testing.T) {
	d := NewDest(testAddr(0), 80, 1)
	d.SetThresholds(5, 0)
	setConns(d, 4, 0)
	if d.Overloaded() {
		t.Fatal("overloaded below the upper threshold")
	}
	setConns(d, 4, 1) // total 5 = upper
	if !d.Overloaded() {
		t.Fatal("not overloaded at the upper threshold")
	}
	// No lower threshold: cleared once total*4 < upper*3, at 3 for 5.
	setConns(d, 4, 0)
	if !d.Overloaded() {
		t.Fatal("cleared at 4 of 5")
	}
	setConns(d, 3, 0)
	if d.Overloaded() {
		t.Fatal("still overloaded at 3 of 5 (kernel clears at total*4 < upper*3)")
	}

	d.SetThresholds(5, 2)
	setConns(d, 5, 0)
	setConns(d, 2, 0)
	if !d.Overloaded() {
		t.Fatal("cleared at the lower threshold itself")
	}
	setConns(d, 1, 0)
	if d.Overloaded() {
		t.Fatal("not cleared below the lower threshold")
	}

	setConns(d, 5, 0)
	d.SetThresholds(10, 0) // raising the limit lifts the overload at once
	if d.Overloaded() {
		t.Fatal("still overloaded after raising the upper threshold")
	}
	d.SetThresholds(3, 0)
	if !d.Overloaded() {
		t.Fatal("not overloaded with conns above a lowered threshold")
	}
	d.SetThresholds(0, 0)
	if d.Overloaded() {
		t.Fatal("overloaded without a threshold")
	}
}

func TestLastWeightKeepsLatestNonZero(t *testing.T) {
	d := NewDest(testAddr(0), 80, 3)
	d.SetWeight(0)
	if d.Weight() != 0 || d.LastWeight() != 3 {
		t.Fatalf("weight %d last %d, want 0 3", d.Weight(), d.LastWeight())
	}
	d.SetWeight(7)
	if d.LastWeight() != 7 {
		t.Fatalf("last %d, want 7", d.LastWeight())
	}
	if z := NewDest(testAddr(1), 80, 0); z.LastWeight() != 0 {
		t.Fatal("a destination created quiescent has a last weight")
	}
}

// TestUnavailableNeverPicked: weight 0 and overloaded destinations never get a
// new connection, whatever the key, from any scheduler; schedulers that do not
// hash never fail while some destination is available.
func TestUnavailableNeverPicked(t *testing.T) {
	keys := randomKeys(3000, 1)
	for _, name := range allNames {
		for _, flags := range []Flags{0, FlagFallback | FlagPort} {
			dests := mkDests(2, 0, 3, 1) // B quiescent, C overloaded
			overload(dests[2])
			s := newSched(t, name, flags, dests)
			hashing := name == "sh" || name == "dh" || name == "mh"
			canFail := hashing && (flags&FlagFallback == 0 || name == "dh")
			for i := range keys {
				p := s.Pick(&keys[i])
				if p == dests[1] || p == dests[2] {
					t.Fatalf("%s flags %v: picked unavailable %c", name, flags, letterOf(dests, p))
				}
				if p == nil && !canFail {
					t.Fatalf("%s flags %v: nil with A and D available", name, flags)
				}
			}
		}
	}
}

func TestNothingAvailableGivesNil(t *testing.T) {
	keys := randomKeys(200, 2)
	cases := map[string]func() []*Dest{
		"all quiescent": func() []*Dest { return mkDests(0, 0, 0) },
		"all overloaded": func() []*Dest {
			d := mkDests(1, 2, 3)
			for _, x := range d {
				overload(x)
			}
			return d
		},
		"quiescent and overloaded": func() []*Dest {
			d := mkDests(0, 5, 0)
			overload(d[1])
			return d
		},
		"empty":       func() []*Dest { return []*Dest{} },
		"nil entries": func() []*Dest { return []*Dest{nil, nil} },
	}
	for _, name := range allNames {
		for _, flags := range []Flags{0, FlagFallback | FlagPort} {
			if p := newSched(t, name, flags, nil).Pick(&keys[0]); p != nil {
				t.Errorf("%s: picked before any Update", name)
			}
			for cname, mk := range cases {
				s := newSched(t, name, flags, mk())
				for i := range keys {
					if p := s.Pick(&keys[i]); p != nil {
						t.Fatalf("%s flags %v, %s: picked %v", name, flags, cname, p.Addr)
					}
				}
				if p := s.Pick(nil); p != nil {
					t.Fatalf("%s, %s: nil key picked", name, cname)
				}
			}
			// A working service emptied by Update.
			s := newSched(t, name, flags, mkDests(1, 2))
			s.Pick(&keys[0])
			s.Update(nil)
			if p := s.Pick(&keys[0]); p != nil {
				t.Errorf("%s: picked after Update(nil)", name)
			}
		}
	}
}

func TestNilKeyIsAccepted(t *testing.T) {
	for _, name := range allNames {
		s := newSched(t, name, FlagFallback, mkDests(1, 2, 3))
		if p := s.Pick(nil); p == nil {
			t.Errorf("%s: nil key gave no destination", name)
		}
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, n := range []int{3, 1000} {
		keys := randomKeys(512, 3)
		for _, name := range allNames {
			dests := benchDests(n)
			s := newSched(t, name, FlagFallback|FlagPort, dests)
			i := 0
			key := &Key{}
			allocs := testing.AllocsPerRun(500, func() {
				*key = keys[i%len(keys)]
				i++
				if s.Pick(key) == nil {
					panic(name + ": no destination")
				}
			})
			if allocs != 0 {
				t.Errorf("%s with %d servers: %v allocs per Pick", name, n, allocs)
			}
		}
	}
}

// TestConcurrentPickAndUpdate runs Pick from several goroutines while Update
// swaps the list; run with -race.
func TestConcurrentPickAndUpdate(t *testing.T) {
	keys := randomKeys(256, 4)
	for _, name := range allNames {
		t.Run(name, func(t *testing.T) {
			sets := [][]*Dest{mkDests(1, 2, 3), mkDests(5), mkDests(0, 1), {}, mkDests(4, 4, 4, 4)}
			s := newSched(t, name, FlagFallback|FlagPort, sets[0])
			member := map[*Dest]bool{}
			for _, set := range sets {
				for _, d := range set {
					member[d] = true
				}
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k := keys[(i+w)%len(keys)]
						if p := s.Pick(&k); p != nil {
							if !member[p] {
								t.Error("picked a destination from no list")
								return
							}
							p.Transition(ClassNone, ClassActive)
							p.Transition(ClassActive, ClassNone)
						}
					}
				}(w)
			}
			rounds := 40
			if name == "mh" {
				rounds = 10 // each Update builds a 65537-slot table
			}
			for i := 0; i < rounds; i++ {
				s.Update(sets[i%len(sets)])
			}
			close(stop)
			wg.Wait()
		})
	}
}

package control

// Service is a virtual service as listings show it.
type Service struct {
	Name       string   `json:"name"`
	Protocol   string   `json:"protocol"` // TCP or UDP
	VIP        string   `json:"vip"`
	Port       uint16   `json:"port"`
	Scheduler  string   `json:"scheduler"`
	Flags      []string `json:"flags,omitempty"`
	Persistent int      `json:"persistent,omitempty"` // seconds; 0 = not persistent
	Netmask    string   `json:"netmask,omitempty"`
	Dests      []Dest   `json:"real_servers"`
}

// Dest is a real server as listings show it.
type Dest struct {
	Address       string `json:"address"`
	Port          uint16 `json:"port"`
	Forward       string `json:"forward"` // Masq, Route, Tunnel, FullNat (ipvsadm's words)
	Weight        int    `json:"weight"`
	ActiveConns   int64  `json:"active_conns"`
	InactiveConns int64  `json:"inactive_conns"`
	UpperThresh   uint32 `json:"upper_threshold"`
	LowerThresh   uint32 `json:"lower_threshold"`
	Conns         uint64 `json:"conns"`
}

// Connection is one entry of the connection table.
type Connection struct {
	Protocol string `json:"protocol"`
	Expire   int64  `json:"expire_ms"`
	State    string `json:"state"`
	Source   string `json:"source"`
	Virtual  string `json:"virtual"`
	Dest     string `json:"destination"`
	Local    string `json:"local,omitempty"`
}

// Counters are the data path's counters.
type Counters struct {
	DataPath map[string]uint64 `json:"datapath"`
	XDP      map[string]uint64 `json:"xdp"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

package daemon

// healthState is filled in with the health-check manager.
type healthState struct{}

func (d *Daemon) startHealth()      {}
func (d *Daemon) stopHealth()       {}
func (d *Daemon) setHealthTargets() {}

package config

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/govs/govs/connsync"
)

// CheckHost checks what the configuration needs of the machine, as a start
// of govsd does: the interfaces exist, the sync key file and the BGP
// password files are ones govsd accepts (mode, size), every exec check's command exists and is
// executable, director.control_group names a group. govsd -t and a start
// both run it. Problems come as a *ErrorList (nil when there are none);
// warnings about the configuration file itself (writable by others, not
// owned by root) come apart: they do not stop a start.
func CheckHost(cfg *Config, path string) (warnings []string, err error) {
	l := &ErrorList{}
	add := func(line int, key, format string, args ...any) {
		l.Errors = append(l.Errors, &Error{File: path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	d := &cfg.Director
	for i, name := range d.Interfaces {
		if _, err := net.InterfaceByName(name); err != nil {
			add(0, fmt.Sprintf("director.interfaces[%d]", i), "interface %q does not exist on this machine", name)
		}
	}
	if s := d.Sync; s != nil {
		if s.Interface != "" {
			if _, err := net.InterfaceByName(s.Interface); err != nil {
				add(0, "director.sync.interface", "interface %q does not exist on this machine", s.Interface)
			}
		}
		if s.KeyFile != "" {
			if _, err := connsync.LoadKey(s.KeyFile); err != nil {
				add(0, "director.sync.key_file", "%v", err)
			}
		}
	}
	if b := d.BGP; b != nil {
		for i, peer := range b.Peers {
			if peer.PasswordFile != "" {
				if _, err := LoadBGPPassword(peer.PasswordFile); err != nil {
					add(0, fmt.Sprintf("director.bgp.peers[%d].password_file", i), "%v", err)
				}
			}
		}
	}
	if d.ControlGroup != "" {
		if _, err := LookupGroup(d.ControlGroup); err != nil {
			add(0, "director.control_group", "%v", err)
		}
	}
	hostCheckErrors(cfg, add)
	if fi, err := os.Stat(path); err == nil {
		if fi.Mode().Perm()&0o002 != 0 {
			warnings = append(warnings, fmt.Sprintf("%s: mode %v: anyone may write the configuration; chmod o-w", path, fi.Mode().Perm()))
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			owner := strconv.Itoa(int(st.Uid))
			if u, err := user.LookupId(owner); err == nil {
				owner = u.Username + " (uid " + owner + ")"
			}
			warnings = append(warnings, fmt.Sprintf("%s: owned by %s, not root: that user can change what govsd runs", path, owner))
		}
	}
	if len(l.Errors) == 0 {
		return warnings, nil
	}
	l.finish()
	return warnings, l
}

// LoadBGPPassword reads a BGP peer's TCP MD5 key from path, as govsd does at
// start: the file must be a regular file that others cannot read or write
// (like the sync key_file), and hold 1..80 bytes (TCP_MD5SIG_MAXKEYLEN)
// after a trailing newline is dropped.
func LoadBGPPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bgp password: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("bgp password: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("bgp password %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("bgp password %s: mode %v is accessible to others; chmod o-rwx", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxBGPPasswordLen+3))
	if err != nil {
		return "", fmt.Errorf("bgp password %s: %w", path, err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case pw == "":
		return "", fmt.Errorf("bgp password %s: empty", path)
	case len(pw) > MaxBGPPasswordLen:
		return "", fmt.Errorf("bgp password %s: longer than %d bytes", path, MaxBGPPasswordLen)
	}
	return pw, nil
}

// LookupGroup returns the gid of a group given by name or number.
func LookupGroup(name string) (int, error) {
	if g, err := user.LookupGroup(name); err == nil {
		return strconv.Atoi(g.Gid)
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil // a gid need not be in /etc/group
	}
	return -1, fmt.Errorf("no group %q on this machine", name)
}

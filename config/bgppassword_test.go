package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadBGPPassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if pw, err := LoadBGPPassword(write("ok", "s3cret\n", 0o600)); err != nil || pw != "s3cret" {
		t.Errorf("LoadBGPPassword = %q, %v; want s3cret", pw, err)
	}
	if pw, err := LoadBGPPassword(write("max", strings.Repeat("x", MaxBGPPasswordLen), 0o640)); err != nil || len(pw) != MaxBGPPasswordLen {
		t.Errorf("80-byte password: %d bytes, %v", len(pw), err)
	}
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"world readable": {write("wr", "s3cret", 0o644), "mode -rw-r--r-- is accessible to others"},
		"empty":          {write("empty", "\n", 0o600), "empty"},
		"too long":       {write("long", strings.Repeat("x", MaxBGPPasswordLen+1), 0o600), "longer than 80 bytes"},
		"missing":        {filepath.Join(dir, "nope"), "no such file"},
		"directory":      {dir, "not a regular file"},
	} {
		if _, err := LoadBGPPassword(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}

	cfg, err := Parse([]byte(bgpCfg("peers: [{address: 198.18.0.1, asn: 1, password_file: "+filepath.Join(dir, "wr")+"}]")), "govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Director.Interfaces = nil
	_, err = CheckHost(cfg, "govs.yaml")
	if err == nil || !strings.Contains(err.Error(), "director.bgp.peers[0].password_file: bgp password") {
		t.Errorf("CheckHost = %v, want a password_file error", err)
	}
}

package connsync

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by umask
			t.Fatal(err)
		}
		return p
	}
	key := []byte("0123456789abcdef0123456789abcdef\n")
	good := write("good", key, 0o600)
	got, err := LoadKey(good)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("LoadKey: %q, %v; want the file's bytes, newline included", got, err)
	}
	if _, err := LoadKey(write("group", key, 0o640)); err != nil {
		t.Errorf("group-readable key refused: %v", err)
	}
	if _, err := LoadKey(write("short", key[:MinKeyLen-1], 0o600)); !errors.Is(err, ErrKeyTooShort) {
		t.Errorf("short key: %v", err)
	}
	for name, p := range map[string]string{
		"world readable": write("world", key, 0o644),
		"too long":       write("long", make([]byte, MaxKeyFileLen+1), 0o600),
		"missing":        filepath.Join(dir, "missing"),
		"directory":      dir,
	} {
		if _, err := LoadKey(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

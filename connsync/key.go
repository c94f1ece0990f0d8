package connsync

import (
	"fmt"
	"io"
	"os"
)

// MaxKeyFileLen bounds the key file read, so that pointing key_file at
// something large by mistake fails instead of hashing megabytes.
const MaxKeyFileLen = 4096

// LoadKey reads the shared HMAC key from path. The whole file is the key,
// byte for byte (a trailing newline is part of it); it must hold at least
// MinKeyLen bytes. A file that others (not owner, not group) may read or
// write is refused: anyone who reads the key can forge connection entries.
// Generate one with: head -c 32 /dev/urandom > /etc/govs/sync.key; chmod 600.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sync key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sync key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sync key %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("sync key %s: mode %v is accessible to others; chmod o-rwx", path, fi.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, MaxKeyFileLen+1))
	if err != nil {
		return nil, fmt.Errorf("sync key %s: %w", path, err)
	}
	switch {
	case len(key) > MaxKeyFileLen:
		return nil, fmt.Errorf("sync key %s: longer than %d bytes", path, MaxKeyFileLen)
	case len(key) < MinKeyLen:
		return nil, fmt.Errorf("sync key %s: %d bytes: %w", path, len(key), ErrKeyTooShort)
	}
	return key, nil
}

package bgp

import (
	"context"
	"log/slog"
	"sort"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// slogAdapter forwards GoBGP's log calls to a *slog.Logger so that BGP
// session events end up in govsd's structured log instead of on logrus'
// stderr.
type slogAdapter struct {
	logger *slog.Logger
}

func newSlogAdapter(logger *slog.Logger) *slogAdapter {
	return &slogAdapter{logger: logger.With("component", "bgp")}
}

func (a *slogAdapter) log(level slog.Level, msg string, fields gobgplog.Fields) {
	if !a.logger.Enabled(context.Background(), level) {
		return
	}
	// Sorted keys keep log lines stable and diffable.
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, fields[k])
	}
	a.logger.Log(context.Background(), level, msg, args...)
}

// Panic and Fatal are only used by GoBGP for internal logic errors after
// which its state is unusable; like GoBGP's own logrus logger, they do not
// return.
func (a *slogAdapter) Panic(msg string, fields gobgplog.Fields) {
	a.log(slog.LevelError, msg, fields)
	panic("gobgp: " + msg)
}

func (a *slogAdapter) Fatal(msg string, fields gobgplog.Fields) {
	a.log(slog.LevelError, msg, fields)
	panic("gobgp: " + msg)
}

func (a *slogAdapter) Error(msg string, fields gobgplog.Fields) {
	a.log(slog.LevelError, msg, fields)
}

func (a *slogAdapter) Warn(msg string, fields gobgplog.Fields) {
	a.log(slog.LevelWarn, msg, fields)
}

func (a *slogAdapter) Info(msg string, fields gobgplog.Fields) {
	a.log(slog.LevelInfo, msg, fields)
}

func (a *slogAdapter) Debug(msg string, fields gobgplog.Fields) {
	a.log(slog.LevelDebug, msg, fields)
}

// SetLevel is a no-op: the level is the slog handler's business.
func (a *slogAdapter) SetLevel(gobgplog.LogLevel) {}

// GetLevel tells GoBGP whether building debug messages is worth it.
func (a *slogAdapter) GetLevel() gobgplog.LogLevel {
	if a.logger.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}

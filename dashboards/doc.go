// Package dashboards holds the Grafana dashboard for govsd's metrics
// (govs.json); its test checks every query against what govsd exports.
package dashboards

// Package manager assembles agentid-operator: a controller-runtime manager
// with the AgentCard controller, discovery (when Config.Discovery), the
// trust bundle ConfigMap, health and readiness probes, metrics and leader
// election, from a Config that cmd/agentid-operator fills from its flags.
//
// The manager's cache holds ConfigMaps of the bundle's name and namespace
// only, so that watching the bundle does not cache every ConfigMap of the
// cluster.
package manager

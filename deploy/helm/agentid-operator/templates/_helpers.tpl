{{/* The chart's name, cut to the 63 characters of a label value. */}}
{{- define "agentid-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of the release's objects. */}}
{{- define "agentid-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agentid-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentid-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "agentid-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "agentid-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "agentid-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agentid-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator's arguments. Each value maps to one flag of
cmd/agentid-operator; the operator refuses a configuration that cannot
work, and so does the chart, at render time.
*/}}
{{- define "agentid-operator.args" -}}
{{- $sv := .Values.signatureVerification }}
{{- $tb := $sv.spireTrustBundle }}
{{- if $sv.enabled }}
- --require-a2a-signature
- --spire-trust-domain={{ required "signatureVerification.spireTrustDomain is required when signatureVerification.enabled" $sv.spireTrustDomain }}
- --spire-trust-bundle-configmap={{ required "signatureVerification.spireTrustBundle.configMapName is required when signatureVerification.enabled" $tb.configMapName }}
- --spire-trust-bundle-configmap-namespace={{ required "signatureVerification.spireTrustBundle.configMapNamespace is required when signatureVerification.enabled" $tb.configMapNamespace }}
{{- with $tb.configMapKey }}
- --spire-trust-bundle-configmap-key={{ . }}
{{- end }}
{{- with $tb.refreshInterval }}
- --spire-trust-bundle-refresh-interval={{ . }}
{{- end }}
{{- with $sv.svidExpiryGracePeriod }}
- --svid-expiry-grace-period={{ . }}
{{- end }}
{{- if $sv.auditMode }}
- --signature-audit-mode
{{- end }}
{{- if $sv.rossoctlLabels }}
- --rossoctl-labels
{{- end }}
{{- if $sv.enforceNetworkPolicies }}
- --enforce-network-policies
{{- /* A restrictive policy admits the operator's own pods: these. */}}
- --network-policy-operator-namespace={{ .Release.Namespace }}
- --network-policy-operator-pod-selector=app.kubernetes.io/name={{ include "agentid-operator.name" . }},app.kubernetes.io/instance={{ .Release.Name }}
{{- end }}
{{- with $sv.spiffeEndpointSocket }}
- --spiffe-endpoint-socket={{ . }}
{{- end }}
{{- else if or $sv.auditMode $sv.enforceNetworkPolicies $sv.spiffeEndpointSocket $sv.rossoctlLabels }}
{{- fail "signatureVerification.auditMode, enforceNetworkPolicies, spiffeEndpointSocket and rossoctlLabels need signatureVerification.enabled" }}
{{- end }}
- --agentcard-discovery={{ .Values.discovery.enabled }}
{{- if .Values.leaderElection.enabled }}
- --leader-elect
- --leader-election-namespace={{ .Release.Namespace }}
{{- end }}
{{- if .Values.metrics.enabled }}
- --metrics-bind-address=:{{ .Values.metrics.port }}
{{- else }}
- --metrics-bind-address=0
{{- end }}
- --health-probe-bind-address=:{{ .Values.probes.port }}
- --max-concurrent-reconciles={{ .Values.controller.maxConcurrentReconciles }}
- --log-format={{ .Values.controller.logFormat }}
{{- end }}

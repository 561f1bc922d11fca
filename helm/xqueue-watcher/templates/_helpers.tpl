{{/*
Names, labels, fixed paths and the computed settings every template shares.
*/}}

{{- define "xqueue-watcher.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's resource name prefix: release name + chart name, unless one contains the other. */}}
{{- define "xqueue-watcher.fullname" -}}
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

{{- define "xqueue-watcher.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xqueue-watcher.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xqueue-watcher.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "xqueue-watcher.labels" -}}
helm.sh/chart: {{ include "xqueue-watcher.chart" . }}
{{ include "xqueue-watcher.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: grader
app.kubernetes.io/part-of: openedx
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "xqueue-watcher.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "xqueue-watcher.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "xqueue-watcher.secretName" -}}
{{- default (include "xqueue-watcher.fullname" .) .Values.xqueue.existingSecret }}
{{- end }}

{{- define "xqueue-watcher.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* ---- Fixed paths inside the pod ---- */}}
{{- define "xqueue-watcher.configRoot" -}}/etc/xqueue-watcher{{- end }}
{{- define "xqueue-watcher.secretDir" -}}/run/secrets/xqueue-watcher{{- end }}
{{- define "xqueue-watcher.journalDir" -}}/var/lib/xqueue-watcher/journal{{- end }}
{{/* The emptyDir (or external work volume) holding job directories; work_dir is its jobs/. */}}
{{- define "xqueue-watcher.workVolumePath" -}}/var/lib/xqueue-watcher/work{{- end }}
{{/* dind: the emptyDir both containers mount for the engine's socket. */}}
{{- define "xqueue-watcher.dindSocketDir" -}}/var/run/xqueue-watcher-engine{{- end }}

{{/* work_dir: the same path in the watcher and, through the shared volume, in the engine. */}}
{{- define "xqueue-watcher.workDir" -}}
{{- if eq .Values.engine.mode "hostSocket" }}
{{- printf "%s/jobs" (trimSuffix "/" .Values.engine.hostSocket.dataDir) }}
{{- else }}
{{- printf "%s/jobs" (include "xqueue-watcher.workVolumePath" .) }}
{{- end }}
{{- end }}

{{/* docker_socket as the watcher sees it. */}}
{{- define "xqueue-watcher.dockerSocket" -}}
{{- if eq .Values.engine.mode "dind" }}
{{- printf "%s/docker.sock" (include "xqueue-watcher.dindSocketDir" .) }}
{{- else if eq .Values.engine.mode "hostSocket" }}
{{- "/var/run/docker.sock" }}
{{- else }}
{{- trimPrefix "unix://" .Values.engine.external.socket }}
{{- end }}
{{- end }}

{{/* The group id owning the engine socket, added to the pod's supplementalGroups ("" for none). */}}
{{- define "xqueue-watcher.socketGroup" -}}
{{- if eq .Values.engine.mode "hostSocket" }}
{{- required "engine.hostSocket.socketGroup is required in hostSocket mode: the gid owning the node's engine socket (stat -c %g /var/run/docker.sock)" .Values.engine.hostSocket.socketGroup | int64 }}
{{- else if and (eq .Values.engine.mode "external") (not (kindIs "invalid" .Values.engine.external.socketGroup)) }}
{{- .Values.engine.external.socketGroup | int64 }}
{{- end }}
{{- end }}

{{/*
Seconds in a duration as the watcher reads it ("20s", "500ms", "2m", "1m30s", "1.5h", or a bare
number of seconds), rounded up. Fails on anything else, naming the value.
*/}}
{{- define "xqueue-watcher.seconds" -}}
{{- $value := . }}
{{- if kindIs "string" $value }}
{{- $text := trim $value }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?$" $text }}
{{- ceil (float64 $text) | int64 }}
{{- else }}
{{- $parts := regexFindAll "[0-9]+(\\.[0-9]+)?(ms|h|m|s)" $text -1 }}
{{- if or (not $parts) (ne (join "" $parts) $text) }}
{{- fail (printf "'%s' is not a duration (write 500ms, 20s, 2m, 1m30s or a number of seconds)" $text) }}
{{- end }}
{{- $unitSeconds := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total := 0.0 }}
{{- range $parts }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $unit := trimPrefix $number . }}
{{- $total = addf $total (mulf (float64 $number) (get $unitSeconds $unit)) }}
{{- end }}
{{- ceil $total | int64 }}
{{- end }}
{{- else }}
{{- ceil (float64 $value) | int64 }}
{{- end }}
{{- end }}

{{/* The longest wall-clock timeout any queue can have: defaults.limits.timeout or a queue's own. */}}
{{- define "xqueue-watcher.longestTimeoutSeconds" -}}
{{- $longest := 20 }}
{{- with .Values.defaults }}{{ with .limits }}{{ with .timeout }}
{{- $longest = include "xqueue-watcher.seconds" . | int64 }}
{{- end }}{{ end }}{{ end }}
{{- range $name, $queue := .Values.queues }}
{{- if and $queue $queue.limits $queue.limits.timeout }}
{{- $longest = max $longest (include "xqueue-watcher.seconds" $queue.limits.timeout | int64) }}
{{- end }}
{{- end }}
{{- $longest }}
{{- end }}

{{/* Longest queue timeout + shutdown grace + margin, or the override when it is not below that. */}}
{{- define "xqueue-watcher.terminationGracePeriodSeconds" -}}
{{- $computed := add (include "xqueue-watcher.longestTimeoutSeconds" . | int64) (include "xqueue-watcher.seconds" .Values.watcher.shutdownGrace | int64) .Values.terminationGrace.marginSeconds }}
{{- with .Values.terminationGrace.override }}
{{- if lt (int64 .) (int64 $computed) }}
{{- fail (printf "terminationGrace.override (%d) is below the longest queue timeout + watcher.shutdownGrace + terminationGrace.marginSeconds (%d): gradings in flight would be killed" (int64 .) (int64 $computed)) }}
{{- end }}
{{- int64 . }}
{{- else }}
{{- $computed }}
{{- end }}
{{- end }}

{{/* The relative part of a queue's grader_root under graders.mountPath ("" when absolute or unset). */}}
{{- define "xqueue-watcher.graderSubPath" -}}
{{- $root := default "" .root }}
{{- if not (hasPrefix "/" $root) }}{{ trimPrefix "./" $root | trimSuffix "/" }}{{ end }}
{{- end }}

{{/*
The queues as conf.d/queues.yaml holds them: values.queues with grader_root placed under
graders.mountPath and, when the engine sees the graders elsewhere, docker_host_grader_root.
*/}}
{{- define "xqueue-watcher.queues" -}}
{{- $mountPath := trimSuffix "/" .Values.graders.mountPath }}
{{- $queues := dict }}
{{- range $name, $given := .Values.queues }}
{{- $queue := deepCopy (default dict $given) }}
{{- $root := default "" $queue.grader_root }}
{{- $relative := include "xqueue-watcher.graderSubPath" (dict "root" $root) }}
{{- if hasPrefix "/" $root }}
{{- $_ := set $queue "grader_root" $root }}
{{- else if $relative }}
{{- $_ := set $queue "grader_root" (printf "%s/%s" $mountPath $relative) }}
{{- else }}
{{- $_ := set $queue "grader_root" $mountPath }}
{{- end }}
{{- if and (not $queue.docker_host_grader_root) (not (hasPrefix "/" $root)) }}
{{- $hostRoot := "" }}
{{- if eq $.Values.engine.mode "hostSocket" }}
{{- $hostRoot = printf "%s/graders/${POD_NAME}" (trimSuffix "/" $.Values.engine.hostSocket.dataDir) }}
{{- else if and (eq $.Values.engine.mode "external") $.Values.engine.external.hostGraderRoot }}
{{- $hostRoot = trimSuffix "/" $.Values.engine.external.hostGraderRoot }}
{{- end }}
{{- if $hostRoot }}
{{- $_ := set $queue "docker_host_grader_root" (ternary (printf "%s/%s" $hostRoot $relative) $hostRoot (ne $relative "")) }}
{{- end }}
{{- end }}
{{- $_ := set $queues $name $queue }}
{{- end }}
{{- toYaml (dict "queues" $queues) }}
{{- end }}

{{/* XQueue's port for the NetworkPolicy: networkPolicy.xqueue.port, else xqueue.url's. */}}
{{- define "xqueue-watcher.xqueuePort" -}}
{{- if .Values.networkPolicy.xqueue.port }}
{{- .Values.networkPolicy.xqueue.port }}
{{- else }}
{{- $url := urlParse .Values.xqueue.url }}
{{- $hostPort := splitList ":" $url.host }}
{{- if eq (len $hostPort) 2 }}
{{- last $hostPort }}
{{- else if eq $url.scheme "https" }}
{{- 443 }}
{{- else }}
{{- 80 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volume mounts of the grader files in the watcher and the dind sidecar (same path in both). */}}
{{- define "xqueue-watcher.graderMount" -}}
{{- if eq .Values.engine.mode "hostSocket" }}
- name: host-data
  mountPath: {{ .Values.graders.mountPath }}
  readOnly: {{ not .writable }}
  subPathExpr: graders/$(POD_NAME)
{{- else }}
- name: graders
  mountPath: {{ .Values.graders.mountPath }}
  readOnly: {{ not .writable }}
{{- if and (eq .Values.graders.source "pvc") .Values.graders.pvc.subPath }}
  subPath: {{ .Values.graders.pvc.subPath }}
{{- end }}
{{- end }}
{{- end }}

{{/* The POD_NAME environment variable (watcher id; hostSocket's per-pod grader directory). */}}
{{- define "xqueue-watcher.podNameEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}

{{/* securityContext of the init containers that run as the watcher's user. */}}
{{- define "xqueue-watcher.initSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser | default 10001 }}
runAsGroup: {{ .Values.securityContext.runAsGroup | default 10001 }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

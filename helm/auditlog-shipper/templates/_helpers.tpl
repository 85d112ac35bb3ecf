{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "auditlog-shipper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "auditlog-shipper.fullname" -}}
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

{{- define "auditlog-shipper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "auditlog-shipper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "auditlog-shipper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auditlog-shipper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "auditlog-shipper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auditlog-shipper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding credentials: the user's existing one, or the one this chart creates. */}}
{{- define "auditlog-shipper.secretName" -}}
{{- default (printf "%s-credentials" (include "auditlog-shipper.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "auditlog-shipper.redisName" -}}
{{- printf "%s-redis" (include "auditlog-shipper.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* True ("true") when no config is given: the release runs the demo. */}}
{{- define "auditlog-shipper.demo" -}}
{{- if and (not .Values.config) (not .Values.existingConfigMap) }}true{{ end }}
{{- end }}

{{- define "auditlog-shipper.redisBundled" -}}
{{- if or .Values.redis.bundled.enabled (include "auditlog-shipper.demo" .) }}true{{ end }}
{{- end }}

{{/* Labels of the bundled Redis: another app name, so no selector of the shipper ever matches it. */}}
{{- define "auditlog-shipper.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "auditlog-shipper.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "auditlog-shipper.redisLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "auditlog-shipper.redisSelectorLabels" . }}
app.kubernetes.io/component: redis
app.kubernetes.io/part-of: {{ include "auditlog-shipper.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "auditlog-shipper.simulatorName" -}}
{{- printf "%s-simulator" (include "auditlog-shipper.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "auditlog-shipper.simulatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "auditlog-shipper.name" . }}-simulator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "auditlog-shipper.simulatorLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "auditlog-shipper.simulatorSelectorLabels" . }}
app.kubernetes.io/component: demo-simulator
app.kubernetes.io/part-of: {{ include "auditlog-shipper.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest pins it. Called with an image values map. */}}
{{- define "auditlog-shipper.imageRef" -}}
{{- $image := index . 0 }}{{ $default := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $default $image.tag) }}
{{- end }}
{{- end }}

{{- define "auditlog-shipper.image" -}}
{{- include "auditlog-shipper.imageRef" (list .Values.image .Chart.AppVersion) }}
{{- end }}

{{/*
A generated secret value kept across upgrades: the live Secret's value when it exists (lookup), a new
random one on the first install. Called with (list $ secretName key).
*/}}
{{- define "auditlog-shipper.keptRandom" -}}
{{- $root := index . 0 }}{{ $name := index . 1 }}{{ $key := index . 2 }}
{{- $live := lookup "v1" "Secret" $root.Release.Namespace $name }}
{{- if and $live $live.data (hasKey $live.data $key) }}
{{- index $live.data $key | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}

{{- define "auditlog-shipper.redisSecretName" -}}
{{- printf "%s-redis" (include "auditlog-shipper.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "auditlog-shipper.demoSecretName" -}}
{{- printf "%s-demo" (include "auditlog-shipper.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "auditlog-shipper.configMapName" -}}
{{- default (include "auditlog-shipper.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/* The demo's shipper config: the simulator Service as a STACKIT provider, a file sink per pod. */}}
{{- define "auditlog-shipper.demoConfig" -}}
providers:
  - name: simulator
    type: stackit
    auditLogUrl: http://{{ include "auditlog-shipper.simulatorName" . }}:8080
    allowInsecureHttp: true # the demo simulator, a Service in the same namespace
    auth:
      token: ${AUDITLOG_SIM_TOKEN}
    interval: 10s
    overlap: 5m
    settleLag: 10s
    lookback: 1h
scopes:
{{- range .Values.demo.projects }}
  - provider: simulator
    project: {{ . }}
{{- end }}
sinks:
  - name: events
    type: file
    path: /var/lib/auditlog-shipper/events-{instance}.ndjson
{{- end }}

{{/* Environment variables the chart itself sets, by name (for the credential check below). */}}
{{- define "auditlog-shipper.chartEnvNames" -}}
INSTANCE_ID METRICS_PORT SHUTDOWN_TIMEOUT DATA_DIR REDIS_URL REDIS_PASSWORD AUDITLOG_SIM_TOKEN STACKIT_SERVICE_ACCOUNT_EMAIL STACKIT_FEDERATED_TOKEN_FILE
{{- end }}

{{/*
Template-time checks of a real configuration: Redis must be reachable somehow, and every ${VAR} and
secret file the config references must be provided. Each failure names the value to set.
*/}}
{{- define "auditlog-shipper.validate" -}}
{{- if not (include "auditlog-shipper.demo" .) }}
{{- $existing := dict }}
{{- $existingKnown := false }}
{{- if .Values.secrets.existingSecret }}
{{- $live := lookup "v1" "Secret" .Release.Namespace .Values.secrets.existingSecret }}
{{- if $live }}{{ $existingKnown = true }}{{ $existing = default (dict) $live.data }}{{ end }}
{{- end }}
{{- /* Redis */}}
{{- $redis := or .Values.redis.url .Values.redis.bundled.enabled (hasKey .Values.secrets.data "REDIS_URL") (hasKey $existing "REDIS_URL") (and .Values.secrets.existingSecret (not $existingKnown)) .Values.envFrom }}
{{- range .Values.extraEnv }}{{ if eq .name "REDIS_URL" }}{{ $redis = true }}{{ end }}{{ end }}
{{- if not $redis }}
{{- fail "auditlog-shipper: no Redis. Set redis.url (without a password), secrets.data.REDIS_URL (with one), a REDIS_URL key in secrets.existingSecret, or redis.bundled.enabled=true for a trial Redis." }}
{{- end }}
{{- /* ${VAR} references */}}
{{- if .Values.config }}
{{- $provided := splitList " " (include "auditlog-shipper.chartEnvNames" .) }}
{{- range $name, $_ := default (dict) .Values.secrets.data }}{{ $provided = append $provided $name }}{{ end }}
{{- range $name, $_ := $existing }}{{ $provided = append $provided $name }}{{ end }}
{{- range .Values.extraEnv }}{{ $provided = append $provided .name }}{{ end }}
{{- $unknowable := or .Values.envFrom (and .Values.secrets.existingSecret (not $existingKnown)) }}
{{- $text := toYaml .Values.config }}
{{- if not $unknowable }}
{{- range regexFindAll "\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}" $text -1 }}
{{- $var := trimSuffix "}" (trimPrefix "${" .) }}
{{- if not (has $var $provided) }}
{{- fail (printf "auditlog-shipper: config references ${%s}, which nothing sets. Set secrets.data.%s (or a %s key in secrets.existingSecret, an extraEnv entry, or envFrom)." $var $var $var) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* The OTLP receiver's ports must be the ones the stackit-telemetry provider listens on */}}
{{- range .Values.config.providers }}
{{- if eq (toString .type) "stackit-telemetry" }}
{{- $listen := default (dict) .listen }}
{{- $port := int (default 4318 $listen.port) }}
{{- $grpc := int (default 0 $listen.grpcPort) }}
{{- if and $.Values.receiver.enabled (ne $port (int $.Values.receiver.port)) }}
{{- fail (printf "auditlog-shipper: provider %s listens on port %d but receiver.port is %d. Set receiver.port=%d." .name $port (int $.Values.receiver.port) $port) }}
{{- end }}
{{- if and $.Values.receiver.enabled (ne $grpc (int $.Values.receiver.grpcPort)) }}
{{- fail (printf "auditlog-shipper: provider %s serves OTLP/gRPC on port %d but receiver.grpcPort is %d. Set receiver.grpcPort=%d." .name $grpc (int $.Values.receiver.grpcPort) $grpc) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Workload Identity needs the STACKIT service account */}}
{{- if and (contains "workloadIdentity" $text) (not (contains "serviceAccountEmail" $text)) (not .Values.serviceAccount.workloadIdentity.serviceAccountEmail) (not $unknowable) }}
{{- fail "auditlog-shipper: a provider uses auth.workloadIdentity but no STACKIT service account is named. Set serviceAccount.workloadIdentity.serviceAccountEmail (or auth.workloadIdentity.serviceAccountEmail in config)." }}
{{- end }}
{{- /* secret files under /etc/auditlog-shipper/secrets/ */}}
{{- if not (and .Values.secrets.existingSecret (not $existingKnown)) }}
{{- range regexFindAll "/etc/auditlog-shipper/secrets/[A-Za-z0-9._-]+" $text -1 }}
{{- $file := base . }}
{{- if not (or (hasKey (default (dict) $.Values.secrets.files) $file) (hasKey $existing $file)) }}
{{- fail (printf "auditlog-shipper: config reads %s, which no secret provides. Set secrets.files.%s (or a %s key in secrets.existingSecret)." . $file $file) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The environment of both the validate-config init container and the shipper. */}}
{{- define "auditlog-shipper.env" -}}
- name: INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
- name: SHUTDOWN_TIMEOUT
  value: "{{ sub .Values.terminationGracePeriodSeconds 5 }}s"
- name: DATA_DIR
  value: /var/lib/auditlog-shipper
{{- if include "auditlog-shipper.redisBundled" . }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "auditlog-shipper.redisSecretName" . }}
      key: password
- name: REDIS_URL
  value: "redis://:$(REDIS_PASSWORD)@{{ include "auditlog-shipper.redisName" . }}:6379"
{{- else if .Values.redis.url }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- with .Values.serviceAccount.workloadIdentity }}
{{- if .serviceAccountEmail }}
- name: STACKIT_SERVICE_ACCOUNT_EMAIL
  value: {{ .serviceAccountEmail | quote }}
{{- end }}
{{- if .projectToken }}
- name: STACKIT_FEDERATED_TOKEN_FILE
  value: /var/run/secrets/stackit.cloud/serviceaccount/token
{{- end }}
{{- end }}
{{- if include "auditlog-shipper.demo" . }}
- name: AUDITLOG_SIM_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "auditlog-shipper.demoSecretName" . }}
      key: token
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "auditlog-shipper.envFrom" -}}
- secretRef:
    name: {{ include "auditlog-shipper.secretName" . }}
{{- with .Values.envFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "auditlog-shipper.volumeMounts" -}}
# A directory, not a subPath mount: Kubernetes updates it in place, which configChange=reload needs.
- { name: config, mountPath: /etc/auditlog-shipper/config, readOnly: true }
- { name: secret-files, mountPath: /etc/auditlog-shipper/secrets, readOnly: true }
{{- if .Values.serviceAccount.workloadIdentity.projectToken }}
- { name: stackit-federated-token, mountPath: /var/run/secrets/stackit.cloud/serviceaccount, readOnly: true }
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

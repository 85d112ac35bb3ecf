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

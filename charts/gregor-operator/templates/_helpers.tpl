{{- define "gregor-operator.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gregor-operator.labels" -}}
app.kubernetes.io/name: gregor-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gregor-operator.selector" -}}
app.kubernetes.io/name: gregor-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the monitoring objects: the chart's and the user's. */}}
{{- define "gregor-operator.monitoringLabels" -}}
{{ include "gregor-operator.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The job label Prometheus gives the brokers' series (the Prometheus
Operator names a PodMonitor's job <namespace>/<name>). */}}
{{- define "gregor-operator.brokerJob" -}}
{{ .Release.Namespace }}/{{ include "gregor-operator.name" . }}-brokers
{{- end -}}

{{/* The operator's metrics Service, which names its scrape job. */}}
{{- define "gregor-operator.metricsService" -}}
{{ include "gregor-operator.name" . | trunc 55 | trimSuffix "-" }}-metrics
{{- end -}}

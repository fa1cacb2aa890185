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

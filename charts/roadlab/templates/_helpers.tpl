{{- define "roadlab.labels" -}}
app.kubernetes.io/name: roadlab
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "roadlab.selector" -}}
app.kubernetes.io/name: roadlab
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "roadlab.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* imagePullSecrets' names, comma-separated: the operator's ROADLAB_IMAGE_PULL_SECRETS. */}}
{{- define "roadlab.pullSecretNames" -}}
{{- $names := list }}
{{- range . }}{{ $names = append $names .name }}{{ end }}
{{- join "," $names }}
{{- end -}}

{{- define "squad.labels" -}}
app.kubernetes.io/name: squad
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "squad.selector" -}}
app.kubernetes.io/name: squad
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "squad.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Labels of every own object: name, instance (the release) and part-of. */}}
{{- define "kms.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: kube-monitoring-stack
{{- end }}

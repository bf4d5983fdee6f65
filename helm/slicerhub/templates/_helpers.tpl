{{- /* Labels of every object this chart adds (z2jh labels its own). */}}
{{- define "slicerhub.labels" -}}
app.kubernetes.io/part-of: slicerhub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- /* z2jh's pods of this release with the given component (hub, proxy). */}}
{{- define "slicerhub.z2jhPod" -}}
podSelector:
  matchLabels:
    component: {{ .component }}
    release: {{ .release }}
{{- end }}

{{- /*
  The values written by `slicerhub config helm-values`: without them the hub
  would start with no deployment file, so refuse to render.
*/}}
{{- define "slicerhub.generated" -}}
{{- $g := .Values.slicerhub.generated -}}
{{- if not (and $g $g.services $g.dataDir) -}}
{{- fail "slicerhub.generated is missing: make the values with `slicerhub config helm-values deployment.yaml > slicerhub-values.yaml` and install with -f slicerhub-values.yaml (docs/kubernetes.md)" -}}
{{- end -}}
{{- toYaml $g -}}
{{- end }}

{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "wasmflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "wasmflow.fullname" -}}
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

{{- define "wasmflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wasmflow.labels" -}}
helm.sh/chart: {{ include "wasmflow.chart" . }}
{{ include "wasmflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "wasmflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wasmflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wasmflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wasmflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from a registry, a repository, a tag and a digest; the digest wins over the tag.
Arguments: root (the chart context), image (image or worker.image), azure (a global.azure.images entry).
The Azure entry (Arc / Marketplace retagging) wins over image values whenever its image is set.
*/}}
{{- define "wasmflow.imageRef" -}}
{{- $az := .azure -}}
{{- if $az.image -}}
{{- $ref := ternary (printf "%s/%s" $az.registry $az.image) $az.image (ne $az.registry "") -}}
{{- if $az.digest }}{{ printf "%s@%s" $ref $az.digest }}{{ else }}{{ printf "%s:%s" $ref .root.Chart.AppVersion }}{{ end -}}
{{- else -}}
{{- $registry := default .root.Values.image.registry .image.registry -}}
{{- $repository := default .root.Values.image.repository .image.repository -}}
{{- $ref := ternary (printf "%s/%s" $registry $repository) $repository (ne $registry "") -}}
{{- $digest := default .root.Values.image.digest .image.digest -}}
{{- if $digest }}{{ printf "%s@%s" $ref $digest }}{{ else }}{{ printf "%s:%s" $ref (default .root.Chart.AppVersion (default .root.Values.image.tag .image.tag)) }}{{ end -}}
{{- end -}}
{{- end }}

{{/* The operator's image: global.azure.images.wasmflow, else image.*. */}}
{{- define "wasmflow.operatorImage" -}}
{{- include "wasmflow.imageRef" (dict "root" . "image" .Values.image "azure" .Values.global.azure.images.wasmflow) }}
{{- end }}

{{/*
The workers' image (passed to the operator as WASMFLOW_WORKER_IMAGE): global.azure.images.worker, else
global.azure.images.wasmflow (one image runs both), else worker.image.* falling back to image.*.
*/}}
{{- define "wasmflow.workerImage" -}}
{{- $az := .Values.global.azure.images -}}
{{- $entry := ternary $az.worker $az.wasmflow (ne $az.worker.image "") -}}
{{- include "wasmflow.imageRef" (dict "root" . "image" .Values.worker.image "azure" $entry) }}
{{- end }}

{{/* The namespaces the operator watches when not cluster-wide. */}}
{{- define "wasmflow.watchNamespaces" -}}
{{- if .Values.watch.namespaces }}{{ join "," .Values.watch.namespaces }}{{ else }}{{ .Release.Namespace }}{{ end }}
{{- end }}

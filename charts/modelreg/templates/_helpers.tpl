{{/* Names and labels, as `helm create` makes them. */}}

{{- define "modelreg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name prefix of every object: "<release>-<chart>", or the release name when it
already contains the chart name. Truncated to 48 characters so suffixed names
("-webhook-tls", "-record-key") stay within the 63 allowed for labels and Services.
*/}}
{{- define "modelreg.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "modelreg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelreg.labels" -}}
helm.sh/chart: {{ include "modelreg.chart" . }}
{{ include "modelreg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelreg
{{- end }}

{{- define "modelreg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelreg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelreg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelreg.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image (by digest when one is given). */}}
{{- define "modelreg.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "modelreg.webhookConfigurationName" -}}
{{- printf "%s.%s.modelreg.dev" (include "modelreg.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "modelreg.webhookTLSSecret" -}}
{{- printf "%s-webhook-tls" (include "modelreg.fullname" .) }}
{{- end }}

{{- define "modelreg.recordKeySecret" -}}
{{- printf "%s-record-key" (include "modelreg.fullname" .) }}
{{- end }}

{{/* The DNS names of the webhook Service, which its certificate must cover. */}}
{{- define "modelreg.serviceDNSNames" -}}
{{- $svc := include "modelreg.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- printf "%s.%s.svc,%s.%s.svc.cluster.local,%s.%s,%s" $svc $ns $svc $ns $svc $ns $svc }}
{{- end }}

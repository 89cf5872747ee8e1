{{/* Labels every object of the release carries. */}}
{{- define "daprtrain.labels" -}}
app.kubernetes.io/name: daprtrain
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* <registry>/<repository>:<tag> for one service; call with (list $ "repository"). */}}
{{- define "daprtrain.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/%s:%s" $root.Values.image.registry (index . 1) $root.Values.image.tag -}}
{{- end -}}

{{/* The worker app ids, worker-1 .. worker-N: each is its own Deployment and its own Dapr app id. */}}
{{- define "daprtrain.workerIds" -}}
{{- range $i := until (int .Values.job.workers) }}
- worker-{{ add $i 1 }}
{{- end }}
{{- end -}}

{{/* The JOB__* environment every service reads (TrainingJobOptions). */}}
{{- define "daprtrain.jobEnv" -}}
- name: JOB__JOBID
  value: {{ .Values.job.id | quote }}
- name: JOB__TOPOLOGY
  value: {{ .Values.job.topology | quote }}
- name: JOB__WORKERS
  value: {{ .Values.job.workers | quote }}
- name: JOB__MODEL
  value: {{ .Values.job.model | quote }}
- name: JOB__OPTIMIZER
  value: {{ .Values.job.optimizer | quote }}
- name: JOB__LEARNINGRATE
  value: {{ .Values.job.learningRate | quote }}
- name: JOB__BATCHSIZE
  value: {{ .Values.job.batchSize | quote }}
- name: JOB__SEED
  value: {{ .Values.job.seed | quote }}
- name: JOB__ROUNDS
  value: {{ .Values.job.rounds | quote }}
- name: JOB__ROUNDDEADLINEMS
  value: {{ .Values.job.roundDeadlineMs | quote }}
- name: JOB__CHECKPOINTEVERY
  value: {{ .Values.job.checkpointEvery | quote }}
- name: JOB__HEARTBEATMS
  value: {{ .Values.job.heartbeatMs | quote }}
- name: JOB__TORCHTHREADS
  value: {{ .Values.job.torchThreads | quote }}
- name: JOB__HOLDOUT
  value: {{ .Values.job.holdout | quote }}
- name: JOB__MAXCHUNKBYTES
  value: {{ .Values.job.maxChunkBytes | quote }}
- name: JOB__SIDECARMAXBODYBYTES
  value: {{ .Values.job.sidecarMaxBodyBytes | quote }}
- name: JOB__DATASET
  value: {{ .Values.job.dataset | default "mnist" | quote }}
{{- with (include "daprtrain.dataDir" .) }}
- name: JOB__DATADIR
  value: {{ . | quote }}
{{- end }}
- name: DAPRTRAIN_REQUIRE_APP_TOKEN
  value: "true"
- name: APP_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "daprtrain.securitySecret" . }}
      key: token
- name: JOB__SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "daprtrain.securitySecret" . }}
      key: job-secret
{{- end -}}

{{/* Sidecar annotations; call with (list $ "app-id"). */}}
{{- define "daprtrain.daprAnnotations" -}}
{{- $root := index . 0 -}}
dapr.io/enabled: "true"
dapr.io/app-id: {{ index . 1 | quote }}
dapr.io/app-port: "8080"
dapr.io/app-protocol: http
dapr.io/enable-app-health-check: "true"
dapr.io/app-health-check-path: /health
dapr.io/log-level: {{ $root.Values.dapr.logLevel | quote }}
dapr.io/max-body-size: {{ $root.Values.dapr.maxBodySize | quote }}
dapr.io/sidecar-cpu-request: {{ $root.Values.dapr.sidecarCpuRequest | quote }}
dapr.io/sidecar-memory-request: {{ $root.Values.dapr.sidecarMemoryRequest | quote }}
{{- if $root.Values.telemetry.prometheusScrape }}
prometheus.io/scrape: "true"
prometheus.io/port: "8080"
prometheus.io/path: /metrics
{{- end }}
dapr.io/app-token-secret: {{ include "daprtrain.securitySecret" $root | quote }}
{{- end -}}

{{/* The Secret with the app API token (key token) and the job's secret (key job-secret): the user's, or the generated one. */}}
{{- define "daprtrain.securitySecret" -}}
{{- .Values.appTokenSecret | default (printf "%s-daprtrain-security" .Release.Name) -}}
{{- end -}}

{{/* Probes on the app's own health endpoint. */}}
{{- define "daprtrain.probes" -}}
ports:
  - name: http
    containerPort: 8080
readinessProbe:
  httpGet: { path: /health, port: http }
  periodSeconds: 5
livenessProbe:
  httpGet: { path: /health, port: http }
  initialDelaySeconds: 20
  periodSeconds: 10
{{- end -}}

{{/*
Where the data is inside the containers: job.dataDir, or /data when only data.persistentVolumeClaim is set (a claim
mounted at "" would not render a valid pod). Empty: synthetic data.
*/}}
{{- define "daprtrain.dataDir" -}}
{{- if .Values.job.dataDir -}}
{{- .Values.job.dataDir -}}
{{- else if .Values.data.persistentVolumeClaim -}}
/data
{{- end -}}
{{- end -}}

{{/*
OpenTelemetry of a service (call with (list $ "app-id")): its name in traces and metrics, and the OTLP endpoint when
telemetry.otlpEndpoint is set. /metrics is always there for Prometheus (see the annotations).
*/}}
{{- define "daprtrain.telemetryEnv" -}}
{{- $root := index . 0 -}}
- name: OTEL_SERVICE_NAME
  value: {{ index . 1 | quote }}
{{- with $root.Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

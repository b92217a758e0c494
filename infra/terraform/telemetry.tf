# Traces and metrics: every task (the hub and each worker) runs an AWS
# Distro for OpenTelemetry (ADOT) collector as a sidecar. Its
# configuration is the AOT_CONFIG_CONTENT variable below (no SSM
# parameter to keep in step), one per service:
#
# - traces: OTLP over HTTP on 127.0.0.1:4318 (the app's
#   NAX_OTLP_ENDPOINT) -> X-Ray (awsxray exporter);
# - metrics, scraped: the app's Prometheus /metrics on 127.0.0.1 (the
#   hub's port 8080, a worker's NAX_WORKER_HEALTH_PORT) every 30 s ->
#   CloudWatch (awsemf exporter) in var.metrics_namespace, dimension
#   ServiceName (the ECS service name), and ServiceName + route / queue
#   where the metric has that label. Counters and gauges only: awsemf
#   turns a Prometheus (explicit-bucket) histogram into a statistic set
#   (count, sum, min, max), from which CloudWatch cannot compute
#   percentiles, and a scraped histogram has no min or max; so they are
#   dropped here rather than exported as wrong numbers;
# - no metric is pushed over OTLP yet: the REST latency alarm reads two
#   counters (alarms.tf), not a histogram.
#
# awsemf writes Embedded Metric Format lines to the metrics log group
# (logs.tf) and CloudWatch extracts the metrics from them: the task roles
# need logs:PutLogEvents on that group, not cloudwatch:PutMetricData
# (which would not be scoped to the group; its namespace condition is
# moot because it is never called).
#
# The sidecar is not essential: a collector crash does not stop the hub
# or a worker (their metrics then stop, and the alarms on them go to
# INSUFFICIENT_DATA; docs/OPERATIONS.md).

locals {
  otel_container_name = "otel-collector"

  # Per service: the app container's metrics port (its /metrics), and
  # the metrics also exported per value of one bounded label.
  otel_services = merge(
    { (local.container_name) = { metrics_port = local.container_port, label = "route", labelled = ["^nax_http_request"] } },
    { for k, w in local.workers : "nax-worker-${k}" => { metrics_port = local.worker_health_port, label = "queue", labelled = ["^nax_worker_"] } },
  )

  otel_config = {
    for svc, s in local.otel_services : svc => yamlencode({
      receivers = {
        otlp = { protocols = { http = { endpoint = "127.0.0.1:4318" } } }
        prometheus = {
          config = {
            scrape_configs = [{
              job_name        = svc
              scrape_interval = "30s"
              scrape_timeout  = "10s"
              metrics_path    = "/metrics"
              static_configs  = [{ targets = ["127.0.0.1:${s.metrics_port}"] }]
            }]
          }
        }
      }
      processors = {
        # aws.ecs.task.id and the like, for the log stream name.
        resourcedetection = { detectors = ["env", "ecs"], timeout = "5s", override = false }
        "resource/service" = {
          attributes = [{ key = "ServiceName", value = svc, action = "upsert" }]
        }
        "filter/scraped_histograms" = {
          error_mode = "ignore"
          metrics    = { metric = ["type == METRIC_DATA_TYPE_HISTOGRAM"] }
        }
        "batch/traces"  = { timeout = "1s" }
        "batch/metrics" = { timeout = "10s" }
      }
      exporters = {
        awsxray = { region = local.region }
        awsemf = {
          region                           = local.region
          namespace                        = var.metrics_namespace
          log_group_name                   = local.log_group_names.metrics
          log_stream_name                  = "${svc}/{TaskId}"
          dimension_rollup_option          = "NoDimensionRollup"
          resource_to_telemetry_conversion = { enabled = true }
          # Only these dimension sets: one CloudWatch metric per name and
          # service (and per route or queue), never per task or pair.
          metric_declarations = [
            { dimensions = [["ServiceName"]], metric_name_selectors = ["^nax_"] },
            { dimensions = [["ServiceName", s.label]], metric_name_selectors = s.labelled },
          ]
        }
      }
      service = {
        pipelines = {
          traces = {
            receivers  = ["otlp"]
            processors = ["resourcedetection", "batch/traces"]
            exporters  = ["awsxray"]
          }
          "metrics/scraped" = {
            receivers  = ["prometheus"]
            processors = ["filter/scraped_histograms", "resourcedetection", "resource/service", "batch/metrics"]
            exporters  = ["awsemf"]
          }
        }
      }
    })
  }

  # The sidecar's container definition, by service (ecs.tf, worker.tf).
  otel_sidecar = {
    for svc, config in local.otel_config : svc => {
      name                   = local.otel_container_name
      image                  = var.otel_collector_image
      essential              = false
      readonlyRootFilesystem = true
      privileged             = false
      cpu                    = 128
      memoryReservation      = 128
      memory                 = 256
      environment = [
        { name = "AOT_CONFIG_CONTENT", value = config },
        { name = "AWS_REGION", value = local.region },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.task.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "${svc}-otel"
        }
      }
    }
  }
}

# What the collectors do with the task role: send trace segments, write
# EMF lines to the metrics log group.
data "aws_iam_policy_document" "telemetry" {
  # PutTraceSegments and PutTelemetryRecords have no resource-level
  # permissions and no condition keys: "*" is the only possible resource.
  statement {
    sid       = "SendTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid = "WriteEmbeddedMetrics"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [
      aws_cloudwatch_log_group.metrics.arn,
      "${aws_cloudwatch_log_group.metrics.arn}:log-stream:*",
    ]
  }
}

resource "aws_iam_policy" "telemetry" {
  name        = "${local.name}-telemetry"
  description = "ADOT collector sidecars: traces to X-Ray, metrics (EMF) to the metrics log group."
  policy      = data.aws_iam_policy_document.telemetry.json
}

resource "aws_iam_role_policy_attachment" "task_telemetry" {
  role       = aws_iam_role.task.name
  policy_arn = aws_iam_policy.telemetry.arn
}

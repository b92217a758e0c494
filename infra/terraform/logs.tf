# CloudWatch log groups: the tasks' output (JSON lines from tracing; the
# collector sidecars' own log too), the services' metrics as the ADOT
# sidecars write them (Embedded Metric Format, from which CloudWatch
# extracts the metrics of var.metrics_namespace), the Redis slow log, the
# VPC flow logs, the API's access log and the WAF logs. Encrypted with
# the customer key, kept var.log_retention_days (a year by default).

locals {
  log_group_names = {
    task       = "/ecs/${local.name}/nax-hub"
    metrics    = "/ecs/${local.name}/metrics"
    redis_slow = "/elasticache/${local.name}/slow-log"
    flow_logs  = "/vpc/${local.name}/flow-logs"
    api_access = "/apigateway/${local.name}/access"
    # WAF delivers only to groups whose names start with aws-waf-logs-.
    waf_edge = "aws-waf-logs-${local.name}-edge"
    waf_api  = "aws-waf-logs-${local.name}-api"
  }
  # Built from the names (not the resources) because the key policy
  # (kms.tf) names them and the log groups need the key first.
  log_group_arns_by_key = {
    for k, n in local.log_group_names :
    k => "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${n}"
  }
  log_group_arns = values(local.log_group_arns_by_key)
}

resource "aws_cloudwatch_log_group" "task" {
  name              = local.log_group_names.task
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = local.log_group_names.metrics
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "redis_slow" {
  name              = local.log_group_names.redis_slow
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  count             = local.create_network ? 1 : 0
  name              = local.log_group_names.flow_logs
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = local.log_group_names.api_access
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  for_each = toset(["edge", "api"])

  name              = local.log_group_names["waf_${each.key}"]
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

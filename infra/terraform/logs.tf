# CloudWatch log groups: the nax-hub task's output (JSON lines from
# tracing) and the Redis slow log. Encrypted with the customer key, kept
# var.log_retention_days (a year by default).

locals {
  log_group_names = {
    task       = "/ecs/${local.name}/nax-hub"
    redis_slow = "/elasticache/${local.name}/slow-log"
  }
  # Built from the names (not the resources) because the key policy
  # (kms.tf) names them and the log groups need the key first.
  log_group_arns = [
    for n in values(local.log_group_names) :
    "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${n}"
  ]
}

resource "aws_cloudwatch_log_group" "task" {
  name              = local.log_group_names.task
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "redis_slow" {
  name              = local.log_group_names.redis_slow
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

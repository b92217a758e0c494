# Alarms: every alarm notifies one SNS topic (encrypted with the customer
# key) when it fires and when it clears. What each means and what to do:
# docs/OPERATIONS.md (the alarm names below, `${local.name}-...`).
#
# AWS metrics: ALB 5xx rate and healthy targets, SQS dead-letter depth
# and oldest message age, ECS CPU and memory per service, Redis memory and
# evictions per node, DynamoDB throttles per table. The services' own
# metrics (the ADOT sidecars, telemetry.tf, in var.metrics_namespace,
# dimension ServiceName): REST p99 latency and WebSocket connections per
# hub task.

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]

  runbook = "docs/OPERATIONS.md"

  # ECS services: the hub and each worker service.
  alarm_services = concat([aws_ecs_service.hub.name], [for s in values(aws_ecs_service.worker) : s.name])

  # Every queue and its dead-letter queue, by key (sqs.tf, eventbridge.tf).
  alarm_queues = merge(
    { for k, q in aws_sqs_queue.main : k => { name = q.name, dlq = aws_sqs_queue.dlq[k].name } },
    { domain_events = { name = aws_sqs_queue.domain_events.name, dlq = aws_sqs_queue.domain_events_dlq.name } },
  )

  # Redis nodes: a replication group without cluster mode names its
  # cache clusters <replication group id>-001, -002, ...
  redis_nodes = [for i in range(var.redis_replicas) : format("%s-%03d", aws_elasticache_replication_group.redis.replication_group_id, i + 1)]

  albs = {
    hub  = aws_lb.hub.arn_suffix
    edge = aws_lb.edge.arn_suffix
  }
}

# --- the topic ---

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  display_name      = "${local.name} alarms"
  kms_master_key_id = aws_kms_key.main.arn
}

# CloudWatch alarms of this account publish; nothing over plain HTTP.
data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- load balancers ---

# Target 5xx answers as a share of requests, per ALB; quiet below 20
# requests a minute, where one error would be a large share.
resource "aws_cloudwatch_metric_alarm" "alb_5xx_rate" {
  for_each = local.albs

  alarm_name          = "${local.name}-alb-5xx-rate-${each.key}"
  alarm_description   = "Target 5xx over ${var.alb_5xx_alarm_percent}% of the ${each.key} ALB's requests (3 of 5 minutes). ${local.runbook}#alb-5xx-rate"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alb_5xx_alarm_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    label       = "Target 5xx, % of requests"
    expression  = "IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      stat        = "Sum"
      period      = 60
      dimensions  = { LoadBalancer = each.value }
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      stat        = "Sum"
      period      = 60
      dimensions  = { LoadBalancer = each.value }
    }
  }
}

# No healthy hub task behind the private ALB: the ALB answers 503 itself
# (not a target 5xx, so the rate above stays quiet).
resource "aws_cloudwatch_metric_alarm" "hub_healthy_targets" {
  alarm_name          = "${local.name}-hub-no-healthy-targets"
  alarm_description   = "No healthy nax-hub target behind the private ALB for 2 minutes. ${local.runbook}#hub-no-healthy-targets"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    LoadBalancer = aws_lb.hub.arn_suffix
    TargetGroup  = aws_lb_target_group.hub.arn_suffix
  }
}

# --- the hub's own metrics (telemetry.tf) ---

# REST p99 latency above var.rest_p99_latency_alarm_seconds, read as
# "more than 1 % of requests were slower than it": the hub counts every
# request (nax_http_requests_total) and those slower than its
# http.slow_request_ms (nax_http_slow_requests_total), which ecs.tf sets
# from the same variable. Over 1 % slow is exactly p99 above the
# threshold, and two counters sum across tasks, where a scraped
# histogram would reach CloudWatch without its buckets (telemetry.tf).
# Quiet below 20 requests a minute, like the 5xx rate.
resource "aws_cloudwatch_metric_alarm" "rest_p99_latency" {
  alarm_name          = "${local.name}-rest-p99-latency"
  alarm_description   = "REST p99 latency above ${var.rest_p99_latency_alarm_seconds} s: over 1% of requests slower (3 of 5 minutes). ${local.runbook}#rest-p99-latency"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "slow_share"
    label       = "Requests slower than the p99 threshold, %"
    expression  = "IF(requests >= 20, 100 * FILL(slow, 0) / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "slow"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "nax_http_slow_requests_total"
      period      = 60
      stat        = "Sum"
      dimensions = {
        ServiceName = local.container_name
      }
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "nax_http_requests_total"
      period      = 60
      stat        = "Sum"
      dimensions = {
        ServiceName = local.container_name
      }
    }
  }
}

# The busiest hub task's open WebSocket connections.
resource "aws_cloudwatch_metric_alarm" "ws_connections_per_task" {
  alarm_name          = "${local.name}-ws-connections-per-task"
  alarm_description   = "A nax-hub task holds ${var.ws_connections_per_task_alarm} or more WebSocket connections (2 of 3 minutes). ${local.runbook}#ws-connections-per-task"
  namespace           = var.metrics_namespace
  metric_name         = "nax_connections"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.ws_connections_per_task_alarm
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ServiceName = local.container_name
  }
}

# --- queues ---

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = local.alarm_queues

  alarm_name          = "${local.name}-dlq-depth-${replace(each.key, "_", "-")}"
  alarm_description   = "Messages in ${each.value.dlq}: a message failed every receive of ${each.value.name}. ${local.runbook}#dlq-depth"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    QueueName = each.value.dlq
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_oldest_message" {
  for_each = local.alarm_queues

  alarm_name          = "${local.name}-queue-age-${replace(each.key, "_", "-")}"
  alarm_description   = "The oldest message of ${each.value.name} is older than ${var.queue_age_alarm_seconds[each.key]} s (15 minutes): its consumer is down, stuck or too slow. ${local.runbook}#queue-age"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_age_alarm_seconds[each.key]
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    QueueName = each.value.name
  }
}

# --- ECS services ---

resource "aws_cloudwatch_metric_alarm" "ecs_cpu" {
  for_each = toset(local.alarm_services)

  alarm_name          = "${local.name}-ecs-cpu-${each.key}"
  alarm_description   = "${each.key}: average CPU above ${var.ecs_cpu_alarm_percent}% for 15 minutes. ${local.runbook}#ecs-cpu"
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.ecs_cpu_alarm_percent
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ClusterName = aws_ecs_cluster.main.name
    ServiceName = each.key
  }
}

# Maximum: the task with the most memory in use (one task runs out of
# memory, not the average).
resource "aws_cloudwatch_metric_alarm" "ecs_memory" {
  for_each = toset(local.alarm_services)

  alarm_name          = "${local.name}-ecs-memory-${each.key}"
  alarm_description   = "${each.key}: a task's memory above ${var.ecs_memory_alarm_percent}% for 10 minutes. ${local.runbook}#ecs-memory"
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.ecs_memory_alarm_percent
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ClusterName = aws_ecs_cluster.main.name
    ServiceName = each.key
  }
}

# --- Redis ---

resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  for_each = toset(local.redis_nodes)

  alarm_name          = "${local.name}-redis-memory-${each.key}"
  alarm_description   = "Redis node ${each.key}: memory above ${var.redis_memory_alarm_percent}% of maxmemory for 15 minutes. ${local.runbook}#redis-memory"
  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.redis_memory_alarm_percent
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    CacheClusterId = each.key
  }
}

# Any eviction: Redis holds sessions, revocations and rate-limit state,
# which must not silently disappear.
resource "aws_cloudwatch_metric_alarm" "redis_evictions" {
  for_each = toset(local.redis_nodes)

  alarm_name          = "${local.name}-redis-evictions-${each.key}"
  alarm_description   = "Redis node ${each.key} evicted keys (maxmemory reached). ${local.runbook}#redis-evictions"
  namespace           = "AWS/ElastiCache"
  metric_name         = "Evictions"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    CacheClusterId = each.key
  }
}

# --- DynamoDB ---

# Read and write throttle events of a table (its indexes' throttling
# shows in the table's write throttles). On-demand tables throttle only
# above twice their previous peak or on a hot partition: any is worth a
# look.
resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each = local.tables

  alarm_name          = "${local.name}-dynamodb-throttles-${each.value.name}"
  alarm_description   = "DynamoDB ${each.value.name}: throttled reads or writes. ${local.runbook}#dynamodb-throttles"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttles"
    label       = "Throttle events"
    expression  = "FILL(reads, 0) + FILL(writes, 0)"
    return_data = true
  }

  metric_query {
    id = "reads"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      stat        = "Sum"
      period      = 300
      dimensions  = { TableName = each.value.name }
    }
  }

  metric_query {
    id = "writes"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      stat        = "Sum"
      period      = 300
      dimensions  = { TableName = each.value.name }
    }
  }
}

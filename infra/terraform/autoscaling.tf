# ECS service autoscaling (Application Auto Scaling, target tracking).
#
# The hub scales between hub_min_tasks and hub_max_tasks on four signals;
# it scales out when any is above its target and in only when all are
# below (target tracking's rule for several policies on one target):
# average CPU, average memory, requests per task on the private ALB (the
# REST path), and WebSocket connections per task (the average of the
# hub's nax_connections gauge, exported by the collector sidecar). Scaling
# in stops tasks; their clients reconnect and resume on the others
# (docs/PROTOCOL.md), so scale-in waits longer than scale-out.
#
# Workers: the webhook applier scales on CPU and memory between
# worker_min_tasks and worker_max_tasks. The audit archiver (exactly one:
# two would fork the hash chains) and the CRM sync (one: its HubSpot rate
# limit is per process) are pinned to their count (minimum = maximum),
# so a manual change of their desired count is undone.

locals {
  hub_scaling_resource_id = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.hub.name}"

  scale_in_cooldown  = 300
  scale_out_cooldown = 60
}

resource "aws_appautoscaling_target" "hub" {
  service_namespace  = "ecs"
  resource_id        = local.hub_scaling_resource_id
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.hub_min_tasks
  max_capacity       = var.hub_max_tasks

  lifecycle {
    precondition {
      condition     = var.hub_min_tasks <= var.hub_max_tasks && var.worker_min_tasks <= var.worker_max_tasks
      error_message = "hub_min_tasks <= hub_max_tasks and worker_min_tasks <= worker_max_tasks."
    }
  }
}

resource "aws_appautoscaling_policy" "hub_cpu" {
  name               = "${local.name}-hub-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.hub.service_namespace
  resource_id        = aws_appautoscaling_target.hub.resource_id
  scalable_dimension = aws_appautoscaling_target.hub.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling_cpu_target_percent
    scale_in_cooldown  = local.scale_in_cooldown
    scale_out_cooldown = local.scale_out_cooldown
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "hub_memory" {
  name               = "${local.name}-hub-memory"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.hub.service_namespace
  resource_id        = aws_appautoscaling_target.hub.resource_id
  scalable_dimension = aws_appautoscaling_target.hub.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling_memory_target_percent
    scale_in_cooldown  = local.scale_in_cooldown
    scale_out_cooldown = local.scale_out_cooldown
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageMemoryUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "hub_requests" {
  name               = "${local.name}-hub-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.hub.service_namespace
  resource_id        = aws_appautoscaling_target.hub.resource_id
  scalable_dimension = aws_appautoscaling_target.hub.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.hub_requests_per_target
    scale_in_cooldown  = local.scale_in_cooldown
    scale_out_cooldown = local.scale_out_cooldown
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.hub.arn_suffix}/${aws_lb_target_group.hub.arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_policy" "hub_connections" {
  name               = "${local.name}-hub-connections"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.hub.service_namespace
  resource_id        = aws_appautoscaling_target.hub.resource_id
  scalable_dimension = aws_appautoscaling_target.hub.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.hub_connections_target_per_task
    scale_in_cooldown  = local.scale_in_cooldown
    scale_out_cooldown = local.scale_out_cooldown

    # Each task's gauge, one data point per scrape: the average over them
    # is the average per task.
    customized_metric_specification {
      namespace   = var.metrics_namespace
      metric_name = "nax_connections"
      statistic   = "Average"

      dimensions {
        name  = "ServiceName"
        value = local.container_name
      }
    }
  }
}

# --- workers ---

resource "aws_appautoscaling_target" "worker" {
  for_each = aws_ecs_service.worker

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${each.value.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = local.workers[each.key].scaled ? var.worker_min_tasks : local.workers[each.key].desired
  max_capacity       = local.workers[each.key].scaled ? var.worker_max_tasks : local.workers[each.key].desired
}

locals {
  worker_scaling_metrics = {
    cpu    = { type = "ECSServiceAverageCPUUtilization", target = var.autoscaling_cpu_target_percent }
    memory = { type = "ECSServiceAverageMemoryUtilization", target = var.autoscaling_memory_target_percent }
  }

  worker_scaling_policies = merge([
    for w, cfg in local.workers : {
      for m, metric in local.worker_scaling_metrics : "${w}-${m}" => merge(metric, { worker = w })
    } if cfg.scaled && cfg.desired > 0
  ]...)
}

resource "aws_appautoscaling_policy" "worker" {
  for_each = local.worker_scaling_policies

  name               = "${local.name}-worker-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker[each.value.worker].service_namespace
  resource_id        = aws_appautoscaling_target.worker[each.value.worker].resource_id
  scalable_dimension = aws_appautoscaling_target.worker[each.value.worker].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.target
    scale_in_cooldown  = local.scale_in_cooldown
    scale_out_cooldown = local.scale_out_cooldown
    predefined_metric_specification {
      predefined_metric_type = each.value.type
    }
  }
}

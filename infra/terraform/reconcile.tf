# Reconciliation (docs/RECONCILIATION.md): an EventBridge Scheduler
# schedule runs `nax-worker reconcile` (one pass of
# worker::reconcile::run_once) as an ECS Fargate task, hourly by default
# (var.reconcile_schedule). The pass reads the store and the venue, asks
# custody and the payment providers about stuck transactions, and writes
# only reconcile.* events (through the outbox and the relay, to the audit
# queue). Corrections are never scheduled: an operator runs them.
#
# The task runs the API's code (it builds the same parts as the hub), so
# it runs as the hub's task role (iam.tf: the tables, sending to the
# queues, the keys) with the hub's settings and secrets, in the hub's
# subnets and security group (HTTPS out, Redis; nothing in). Its image is
# var.reconcile_container_image (default: the hub's image, which must then
# ship the nax-worker binary; var.reconcile_command runs it), from the
# same ECR repository (the execution role pulls only from there).

locals {
  reconcile_image = var.reconcile_container_image != "" ? var.reconcile_container_image : var.container_image
  # The hub's settings without its listener (the worker serves no API).
  reconcile_environment = {
    for k, v in local.container_environment : k => v if !contains(["NAX_BIND", "NAX_PORT", "NAX_TRUSTED_PROXIES"], k)
  }
}

resource "aws_ecs_task_definition" "reconcile" {
  family                   = "${local.name}-reconcile"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 512
  memory                   = 1024
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "data"
  }

  container_definitions = jsonencode([{
    name                   = "nax-worker-reconcile"
    image                  = local.reconcile_image
    essential              = true
    readonlyRootFilesystem = true
    privileged             = false
    command                = var.reconcile_command
    environment            = [for k in sort(keys(local.reconcile_environment)) : { name = k, value = local.reconcile_environment[k] }]
    secrets                = [for k in sort(keys(local.container_secrets)) : { name = k, valueFrom = local.container_secrets[k] }]
    mountPoints = [{
      sourceVolume  = "data"
      containerPath = "/data"
      readOnly      = false
    }]
    stopTimeout = 30
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.task.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "reconcile"
      }
    }
  }])
}

resource "aws_scheduler_schedule" "reconcile" {
  name                         = "${local.name}-reconcile"
  description                  = "nax-worker reconcile: one reconciliation pass"
  schedule_expression          = var.reconcile_schedule
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = aws_kms_key.main.arn

  flexible_time_window {
    mode                      = "FLEXIBLE"
    maximum_window_in_minutes = 5
  }

  target {
    arn      = aws_ecs_cluster.main.arn
    role_arn = aws_iam_role.reconcile_scheduler.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.reconcile.arn
      launch_type         = "FARGATE"
      platform_version    = "LATEST"
      task_count          = 1

      network_configuration {
        subnets          = var.private_subnet_ids
        security_groups  = [aws_security_group.task.id]
        assign_public_ip = false
      }
    }

    # A pass missed for an hour is made up by the next one.
    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }
}

# --- the scheduler's role: run this task, in this cluster, nothing else ---

data "aws_iam_policy_document" "reconcile_scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "reconcile_scheduler" {
  name               = "${local.name}-reconcile-scheduler"
  description        = "EventBridge Scheduler: runs the reconcile task"
  assume_role_policy = data.aws_iam_policy_document.reconcile_scheduler_assume.json
}

data "aws_iam_policy_document" "reconcile_scheduler" {
  statement {
    sid     = "RunTheReconcileTask"
    actions = ["ecs:RunTask"]
    # Any revision of the family: a new deployment's is used at once.
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${aws_ecs_task_definition.reconcile.family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }

  statement {
    sid       = "PassTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  # The schedule is encrypted with the main key.
  statement {
    sid       = "DecryptTheSchedule"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "reconcile_scheduler" {
  name   = "reconcile-scheduler"
  role   = aws_iam_role.reconcile_scheduler.id
  policy = data.aws_iam_policy_document.reconcile_scheduler.json
}

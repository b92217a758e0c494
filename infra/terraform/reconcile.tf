# Reconciliation (docs/RECONCILIATION.md): an EventBridge Scheduler
# schedule runs `nax-worker reconcile` (one pass of
# worker::reconcile::run_once) as an ECS Fargate task of the worker's
# task definition (worker.tf, `reconcile`: its role, settings, secrets and
# security group), hourly by default (var.reconcile_schedule). The pass
# reads the store and the venue, asks custody and the payment providers
# about stuck transactions, and writes only reconcile.* events (through
# the outbox and the relay, to the audit queue). Corrections are never
# scheduled: an operator runs them.

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
      # Without a revision: the family's latest active revision, so a
      # revision the deploy workflow registers runs at the next tick.
      task_definition_arn = aws_ecs_task_definition.worker["reconcile"].arn_without_revision
      launch_type         = "FARGATE"
      platform_version    = "LATEST"
      task_count          = 1

      network_configuration {
        subnets          = local.private_subnet_ids
        security_groups  = [aws_security_group.worker.id]
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
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${aws_ecs_task_definition.worker["reconcile"].family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }

  statement {
    sid       = "PassTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.worker["reconcile"].arn, aws_iam_role.worker_execution.arn]
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

# The nax-worker services (docs/ARCHITECTURE.md "After the queues"): the
# consumers of the event queues, one ECS service each, from the same image
# as the hub. The hub tasks do not run them (NAX_WORKER_IN_PROCESS=false
# in ecs.tf). Reconciliation has a task definition and no service: a
# schedule runs it (reconcile.tf).
#
# The audit archiver runs as exactly one task, and a deployment stops the
# old task before starting the new one (maximum 100 %, minimum 0 %): two
# archivers would each extend the hash chains (docs/AUDIT.md). The CRM
# sync stays at one task: its HubSpot rate limit is per process
# (docs/HUBSPOT.md, "Limits"), so more tasks would exceed the app's limit.
# The webhook applier is idempotent and scales out (autoscaling.tf).
#
# Each worker has a task role of its own, with only what its command
# does (worker/src/commands.rs): the audit archiver and the CRM sync read
# their queue and keep checkpoints in the store; the webhook applier and
# reconciliation build the API's parts (Kind::needs_api), so they also
# run the outbox relay (under the shared Redis lease) that sends to the
# queues and puts domain events on the bus.

locals {
  worker_health_port = 9100

  # queue: the key of the queue it consumes (sqs.tf), if any; runs_api:
  # builds the API's parts (store with its data key, outbox relay).
  workers = {
    audit     = { command = ["audit"], desired = 1, single = true, scaled = false, queue = "audit", runs_api = false }
    hubspot   = { command = ["hubspot"], desired = 1, single = false, scaled = false, queue = "hubspot", runs_api = false }
    webhooks  = { command = ["webhooks"], desired = 2, single = false, scaled = true, queue = "webhook", runs_api = true }
    reconcile = { command = ["reconcile"], desired = 0, single = true, scaled = false, queue = null, runs_api = true }
  }

  # The hub's settings (ecs.tf) minus its listener, plus the consumers'
  # own; /health etc. on every interface of the task's ENI for the
  # container health check.
  worker_environment = merge(
    { for k, v in local.container_environment : k => v if !contains(["NAX_BIND", "NAX_PORT", "NAX_TRUSTED_PROXIES"], k) },
    {
      NAX_WORKER_HEALTH_PORT = tostring(local.worker_health_port)
      NAX_AUDIT_BUCKET       = aws_s3_bucket.audit.id
      NAX_AUDIT_KMS_KEY_ID   = aws_kms_key.main.arn
    },
    var.worker_environment,
  )

  # The HubSpot private app token and whatever else the operator passes.
  worker_secrets = merge(local.container_secrets, var.worker_secrets)
}

resource "aws_ecs_task_definition" "worker" {
  for_each = local.workers

  family                   = "${local.name}-nax-worker-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_task_cpu
  memory                   = var.worker_task_memory
  execution_role_arn       = aws_iam_role.worker_execution.arn
  task_role_arn            = aws_iam_role.worker[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The worker keeps nothing on disk in production (state in DynamoDB,
  # the archive in S3): a scratch volume for the data directory only.
  volume {
    name = "data"
  }

  container_definitions = jsonencode([{
    name                   = "nax-worker"
    image                  = var.container_image
    essential              = true
    readonlyRootFilesystem = true
    privileged             = false
    entryPoint             = ["nax-worker"]
    command                = each.value.command
    environment            = [for k, v in merge(local.worker_environment, { OTEL_SERVICE_NAME = "nax-worker-${each.key}" }) : { name = k, value = v }]
    secrets                = [for k in sort(keys(local.worker_secrets)) : { name = k, valueFrom = local.worker_secrets[k] }]
    mountPoints = [{
      sourceVolume  = "data"
      containerPath = "/data"
      readOnly      = false
    }]
    healthCheck = {
      command     = var.worker_health_check_command
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    # SIGTERM: each consumer finishes its batch (up to 30 s) and gives
    # back what it did not start.
    stopTimeout = 45
    dependsOn   = [{ containerName = local.otel_container_name, condition = "START" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.task.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "nax-worker-${each.key}"
      }
    }
  }, local.otel_sidecar["nax-worker-${each.key}"]])
}

resource "aws_ecs_service" "worker" {
  for_each = { for k, w in local.workers : k => w if w.desired > 0 }

  name                               = "nax-worker-${each.key}"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.worker[each.key].arn
  desired_count                      = each.value.desired
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = each.value.single ? 0 : 100
  deployment_maximum_percent         = each.value.single ? 100 : 200
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Every worker service has a scalable target (autoscaling.tf): the
  # webhook applier scales between worker_min_tasks and worker_max_tasks,
  # the others are pinned to `desired` (minimum = maximum).
  lifecycle {
    ignore_changes = [desired_count]
  }
}

# --- network: nothing comes in; out to Redis and HTTPS ---

resource "aws_security_group" "worker" {
  name        = "${local.name}-worker"
  description = "${local.name} nax-worker tasks: no ingress; Redis and HTTPS out"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "worker_to_redis" {
  security_group_id            = aws_security_group.worker.id
  description                  = "Redis (TLS): the private-channel backplane of balances the applier changes"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_worker" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from the nax-worker tasks"
  referenced_security_group_id = aws_security_group.worker.id
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
}

resource "aws_vpc_security_group_egress_rule" "worker_https" {
  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to AWS APIs, the venue, providers and HubSpot"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# --- roles: one task role per worker ---

resource "aws_iam_role" "worker" {
  for_each = local.workers

  name               = "${local.name}-worker-${each.key}"
  description        = "nax-worker ${each.key} task: its queue, the store, what its command does"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
}

data "aws_iam_policy_document" "worker" {
  for_each = local.workers

  # The store (the applier commits, the CRM sync and the archiver keep
  # SyncCheckpoints, reconciliation reads), as the hub has it; the workers
  # building the API's parts (its providers) read the provider secrets
  # (iam.tf) as the hub does.
  source_policy_documents = concat(
    [data.aws_iam_policy_document.operational_tables.json],
    each.value.runs_api ? [data.aws_iam_policy_document.provider_secrets.json] : [],
  )

  # Its own queue: receive, delete, heartbeat; and its dead-letter
  # queue's depth for /metrics (nax_worker_dlq_depth).
  dynamic "statement" {
    for_each = each.value.queue == null ? [] : [each.value.queue]
    content {
      sid = "ConsumeItsQueue"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
      ]
      resources = [aws_sqs_queue.main[statement.value].arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.queue == null ? [] : [each.value.queue]
    content {
      sid       = "DeadLetterDepth"
      actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = [aws_sqs_queue.dlq[statement.value].arn]
    }
  }

  # The outbox relay (webhooks, reconcile): sends every event to its
  # queues, as the hub's relay does.
  dynamic "statement" {
    for_each = each.value.runs_api ? [1] : []
    content {
      sid       = "RelaySendsToTheQueues"
      actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = [for q in values(aws_sqs_queue.main) : q.arn]
    }
  }

  # ... and the domain events to the bus (NAX_EVENTBRIDGE_BUS is set for
  # the workers too: without this, a worker holding the relay lease could
  # not publish and the outbox would stall).
  dynamic "statement" {
    for_each = each.value.runs_api ? [1] : []
    content {
      sid       = "RelayPutsDomainEvents"
      actions   = ["events:PutEvents"]
      resources = [aws_cloudwatch_event_bus.domain.arn]
      condition {
        test     = "StringEquals"
        variable = "events:source"
        values   = ["nax.stream"]
      }
    }
  }

  statement {
    sid = "KeyThroughServices"
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:DescribeKey",
    ]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "dynamodb.${local.region}.amazonaws.com",
        "sqs.${local.region}.amazonaws.com",
      ]
    }
  }

  # The store's data key (api/src/seal), for the workers that open the
  # sealed store (the API's parts); generated by the hub, so unwrap only.
  dynamic "statement" {
    for_each = each.value.runs_api ? [1] : []
    content {
      sid       = "StoreDataKey"
      actions   = ["kms:Decrypt"]
      resources = [aws_kms_key.main.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:nax-purpose"
        values   = ["store-data-key"]
      }
    }
  }
}

resource "aws_iam_role_policy" "worker" {
  for_each = local.workers

  name   = "nax-worker-${each.key}"
  role   = aws_iam_role.worker[each.key].id
  policy = data.aws_iam_policy_document.worker[each.key].json
}

# The archive's own policy (audit.tf): objects under audit/, the key
# through S3. The archiver only.
resource "aws_iam_role_policy_attachment" "worker_audit_archive" {
  role       = aws_iam_role.worker["audit"].name
  policy_arn = aws_iam_policy.audit_archive.arn
}

# Traces and metrics of the collector sidecar (telemetry.tf).
resource "aws_iam_role_policy_attachment" "worker_telemetry" {
  for_each = local.workers

  role       = aws_iam_role.worker[each.key].name
  policy_arn = aws_iam_policy.telemetry.arn
}

resource "aws_iam_role" "worker_execution" {
  name               = "${local.name}-worker-execution"
  description        = "ECS on behalf of the nax-worker tasks: image pull, logs, secrets"
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json
}

data "aws_iam_policy_document" "worker_execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PullTheImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchGetImage",
    ]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "WriteTheTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.task.arn}:log-stream:*"]
  }

  statement {
    sid       = "ReadTheContainerSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = distinct(values(local.worker_secrets))
  }

  statement {
    sid       = "DecryptTheSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "worker_execution" {
  name   = "nax-worker-execution"
  role   = aws_iam_role.worker_execution.id
  policy = data.aws_iam_policy_document.worker_execution.json
}

# The nax-hub service: an ECS Fargate cluster, the task definition (the
# hub's container, port 8080, /health, and the ADOT collector sidecar of
# telemetry.tf), the service in the private subnets, and the internal ALB
# in front of it (HTTPS, WebSocket upgrades included).
# Traffic allowed: API Gateway's VPC link (api_gateway.tf) and the ALB
# ingress CIDRs -> ALB:443 -> task:8080; the edge ALB (edge.tf) -> task:8080
# for the WebSocket path; the task -> Redis:6379, and out to AWS APIs and
# the upstream venue over HTTPS. Nothing else reaches the task or Redis.
#
# TLS: clients -> API Gateway / edge ALB, API Gateway -> private ALB, the
# task -> Redis and every AWS API are TLS. Plain inside the VPC: ALB ->
# task:8080 (the hub has no TLS listener, docs/PROTOCOL.md: "TLS is the
# load balancer's"; the hop stays in the private subnets and only the two
# ALBs' security groups may open it) and, inside the task's own network
# namespace, the hub <-> collector on 127.0.0.1 (OTLP 4318, /metrics).

locals {
  container_name = "nax-hub"
  container_port = 8080

  # Settings the hub's config knows (hub/src/config.rs): listen on every
  # interface of the task's ENI (the default is 127.0.0.1), on the port the
  # target group uses, with the data directory on the task's volume (the
  # root file system is read-only); state in this module's DynamoDB tables,
  # events to its queues, Redis shared by the tasks (NAX_REDIS_URL, below);
  # stored secrets (TOTP seeds, password hashes) sealed with a data key of
  # the customer key (api/src/seal: GenerateDataKey once, kept wrapped in
  # SyncCheckpoints, Decrypt at every task start). The ALB's subnets are
  # trusted proxies: their X-Forwarded-For names the client, which the
  # login throttle, rate limits and per-address caps count against
  # (api/src/http/client_ip.rs); the task only accepts the ALB's group.
  # NAX_PROFILE=production: the task refuses to start while any part is a
  # stand-in (docs/ARCHITECTURE.md, "Configuration"), so the operator
  # passes the venue (NAX_VENUE=graphql, NAX_VENUE_ENDPOINT) in
  # container_environment and its token, NAX_JWT_SECRET and the webhook
  # secrets in container_secrets, and the real payment, custody and KYC
  # providers' settings (README "Real providers"); a task missing any of
  # them stops at start, naming it. Several venues: the whole [[venues]]
  # TOML as one secret in container_secrets, NAX_CONFIG_TOML.
  container_environment = merge({
    NAX_PROFILE               = "production"
    NAX_BIND                  = "0.0.0.0"
    NAX_PORT                  = tostring(local.container_port)
    NAX_DATA_DIR              = "/data"
    AWS_REGION                = local.region
    NAX_AWS_REGION            = local.region
    NAX_STORE                 = "dynamodb"
    NAX_DYNAMODB_TABLE_PREFIX = var.resource_prefix
    NAX_EVENTS_TO_SQS         = "true"
    NAX_SQS_QUEUE_PREFIX      = var.resource_prefix
    NAX_KMS_KEY_ID            = aws_kms_key.main.arn
    # Both ALBs' subnets (the private ALB and the API's VPC link in the
    # private ones, the edge ALB in the public ones): the right-most
    # untrusted X-Forwarded-For entry is the client.
    NAX_TRUSTED_PROXIES = join(",", concat(local.private_subnet_cidrs, local.public_subnet_cidrs))
    # The REST latency alarm's threshold (alarms.tf): requests slower
    # than this are counted as slow.
    NAX_SLOW_REQUEST_MS = tostring(ceil(var.rest_p99_latency_alarm_seconds * 1000))
    # Traces over OTLP/HTTP to the collector sidecar (telemetry.tf).
    NAX_OTLP_ENDPOINT = "http://127.0.0.1:4318"
    # The queue consumers run in their own services (worker.tf).
    NAX_WORKER_IN_PROCESS         = "false"
    NAX_WEBHOOK_WORKER_IN_PROCESS = "false"
    # Domain events also go to the bus (eventbridge.tf).
    NAX_EVENTBRIDGE_BUS = aws_cloudwatch_event_bus.domain.name
  }, var.container_environment)

  # Every task needs the same NAX_JWT_SECRET (and, for a graphql venue,
  # NAX_VENUE_TOKEN): pass them in container_secrets.
  container_secrets = merge(
    var.container_secrets,
    { NAX_REDIS_URL = aws_secretsmanager_secret.redis_url.arn },
  )
}

resource "aws_ecs_cluster" "main" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "hub" {
  family                   = "${local.name}-nax-hub"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Scratch space for the hub's data directory (history snapshots,
  # generated defaults). It is per task and lost on replacement: state
  # that must survive lives in DynamoDB and Redis.
  volume {
    name = "data"
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = var.container_image
    essential              = true
    readonlyRootFilesystem = true
    privileged             = false
    portMappings = [{
      containerPort = local.container_port
      protocol      = "tcp"
    }]
    environment = [for k in sort(keys(local.container_environment)) : { name = k, value = local.container_environment[k] }]
    secrets     = [for k in sort(keys(local.container_secrets)) : { name = k, valueFrom = local.container_secrets[k] }]
    mountPoints = [{
      sourceVolume  = "data"
      containerPath = "/data"
      readOnly      = false
    }]
    # One descriptor per WebSocket connection: room for max_connections
    # (20 000 by default) plus the hub's own.
    ulimits = [{
      name      = "nofile"
      softLimit = 65536
      hardLimit = 65536
    }]
    # Liveness only (/health answers while the process runs). /ready is not
    # used: it reports an upstream outage, which a restart cannot fix.
    healthCheck = {
      command     = var.health_check_command
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    # SIGTERM, then the hub drains connections (shutdown_drain_ms, 5 s by
    # default) before exiting.
    stopTimeout = 30
    # The collector listens before the hub sends its first spans.
    dependsOn = [{ containerName = local.otel_container_name, condition = "START" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.task.name
        awslogs-region        = local.region
        awslogs-stream-prefix = local.container_name
      }
    }
  }, local.otel_sidecar["nax-hub"]])
}

resource "aws_ecs_service" "hub" {
  name                               = "nax-hub"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.hub.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60 # books warm up from the upstream snapshot
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = false
  }

  # The private ALB (REST through API Gateway, internal callers) ...
  load_balancer {
    target_group_arn = aws_lb_target_group.hub.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  # ... and the edge ALB (the WebSocket path, edge.tf). A target group
  # belongs to one load balancer, hence two.
  load_balancer {
    target_group_arn = aws_lb_target_group.edge.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Autoscaling (autoscaling.tf) owns the count after creation;
  # desired_count is the first deployment's.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https, aws_lb_listener.edge_https]
}

# --- the private ALB ---

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "${local.name} internal ALB: HTTPS from the allowed CIDRs, to the tasks only"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "alb_to_task" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the nax-hub tasks"
  referenced_security_group_id = aws_security_group.task.id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_lb" "hub" {
  name                       = "${local.name}-alb"
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = local.private_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  # Longer than the hub's ping interval (20 s), so an idle WebSocket is
  # never cut by the ALB.
  idle_timeout = 120

  access_logs {
    bucket  = var.alb_access_logs_bucket
    prefix  = local.name
    enabled = true
  }

  lifecycle {
    precondition {
      condition     = local.create_network ? length(var.private_subnet_ids) == 0 && length(var.public_subnet_ids) == 0 : length(var.private_subnet_ids) >= 2 && length(var.public_subnet_ids) >= 2
      error_message = "Without vpc_id the network is created here: leave private_subnet_ids and public_subnet_ids empty. With vpc_id, pass at least two of each."
    }
  }
}

resource "aws_lb_target_group" "hub" {
  name        = "${local.name}-hub"
  vpc_id      = local.vpc_id
  target_type = "ip"
  port        = local.container_port
  protocol    = "HTTP"
  # The hub drains for shutdown_drain_ms (5 s) after SIGTERM; give
  # in-flight requests the same and a margin.
  deregistration_delay = 30

  health_check {
    path                = "/health"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.hub.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.alb_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.hub.arn
  }
}

# The hub serves /metrics on its HTTP port; the collector sidecar scrapes
# it on 127.0.0.1, nobody outside the task needs it.
resource "aws_lb_listener_rule" "hub_no_metrics" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1

  condition {
    path_pattern {
      values = ["/metrics"]
    }
  }

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "not found"
      status_code  = "404"
    }
  }
}

# --- the task's security group ---

resource "aws_security_group" "task" {
  name        = "${local.name}-task"
  description = "${local.name} nax-hub tasks: from the ALB only"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "task_from_alb" {
  security_group_id            = aws_security_group.task.id
  description                  = "HTTP and WebSocket from the ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_vpc_security_group_egress_rule" "task_to_redis" {
  security_group_id            = aws_security_group.task.id
  description                  = "Redis (TLS)"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
}

# AWS APIs (DynamoDB, SQS, KMS, ECR, Logs, Secrets Manager) through NAT
# or VPC endpoints, the upstream venue, custody and payment providers:
# all HTTPS.
resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to AWS APIs and upstream providers"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}


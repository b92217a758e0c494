# Redis (ElastiCache replication group): rate limits, sessions, the book
# cache and the cross-node backplane for private channels (docs/ARCHITECTURE.md
# "Several nodes"). A primary and replicas spread over the private subnets'
# AZs with automatic failover; encrypted at rest (customer key) and in
# transit (TLS required), AUTH token required. Only the task's security
# group reaches it (ecs.tf).

resource "aws_elasticache_subnet_group" "redis" {
  name        = "${local.name}-redis"
  description = "Private subnets of ${local.name} Redis"
  subnet_ids  = local.private_subnet_ids
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "${local.name} Redis: reachable from the nax-hub tasks only"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_task" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from the nax-hub tasks"
  referenced_security_group_id = aws_security_group.task.id
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
}
# No egress rule: Redis answers on established connections only, and a
# security group without egress rules lets nothing out.

locals {
  redis_port = 6379
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = "${local.name}-redis"
  description          = "${local.name}: rate limits, sessions, book cache, backplane"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = local.redis_port
  parameter_group_name = "default.redis${split(".", var.redis_engine_version)[0]}"

  num_cache_clusters         = var.redis_replicas
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.redis.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = var.redis_auth_token
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis_slow.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}

# The AUTH token, for operators; the task gets it inside NAX_REDIS_URL.
resource "aws_secretsmanager_secret" "redis_auth_token" {
  # Rotating this secret means rotating Redis AUTH in step (a rotation
  # Lambda calling ModifyReplicationGroup with ROTATE, then SET, and the
  # tasks re-reading it): a separate component, not this configuration.
  # Rotation is the run-book in README.md.
  #checkov:skip=CKV2_AWS_57:Needs a rotation Lambda that also rotates Redis AUTH (ModifyReplicationGroup); outside this module, run-book in README.
  name                    = "${local.name}/redis-auth-token"
  description             = "AUTH token of ${local.name} Redis"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "redis_auth_token" {
  secret_id     = aws_secretsmanager_secret.redis_auth_token.id
  secret_string = var.redis_auth_token
}

# The URL the hub connects with (NAX_REDIS_URL): TLS (transit encryption is
# required) with the AUTH token as password, to the primary endpoint.
resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:Holds the AUTH token; rotates with it (run-book in README), not on its own.
  name                    = "${local.name}/redis-url"
  description             = "NAX_REDIS_URL of the ${local.name} tasks"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${urlencode(var.redis_auth_token)}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
}

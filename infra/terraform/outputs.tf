# What the service's configuration and the operators need from here.

output "table_names" {
  description = "DynamoDB table names by role (users, transactions, webhook_receipts, sync_checkpoints, idempotency_keys, refresh_families, outbox, market_archive)."
  value       = { for k, t in local.tables : k => t.name }
}

output "table_arns" {
  description = "DynamoDB table ARNs by role."
  value       = { for k, t in local.tables : k => t.arn }
}

output "queue_urls" {
  description = "Event queue URLs by role (audit, hubspot, webhook): where the outbox relay sends."
  value       = { for k, q in aws_sqs_queue.main : k => q.url }
}

output "queue_arns" {
  description = "Event queue ARNs by role (for the consumers' roles)."
  value       = { for k, q in aws_sqs_queue.main : k => q.arn }
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URLs by role (alarm on their depth, redrive after a fix)."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.url }
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (TLS, AUTH); connect as rediss://:TOKEN@HOST:6379."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "redis_reader_endpoint" {
  description = "Redis reader endpoint (replicas)."
  value       = aws_elasticache_replication_group.redis.reader_endpoint_address
}

output "redis_auth_token_secret_arn" {
  description = "Secrets Manager secret holding the Redis AUTH token."
  value       = aws_secretsmanager_secret.redis_auth_token.arn
}

output "kms_key_arn" {
  description = "The customer-managed key encrypting the tables, queues, Redis, secret and logs (consumers need kms:Decrypt on it)."
  value       = aws_kms_key.main.arn
}

output "alb_dns_name" {
  description = "Internal DNS name of the private ALB (HTTPS; API Gateway's VPC link and alb_ingress_cidrs reach it; /ws works here too for internal clients)."
  value       = aws_lb.hub.dns_name
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.main.name
}

output "ecs_service_name" {
  description = "ECS service of nax-hub."
  value       = aws_ecs_service.hub.name
}

output "task_role_arn" {
  description = "IAM role the hub's AWS calls run as."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the nax-hub task."
  value       = aws_cloudwatch_log_group.task.name
}

output "audit_bucket_arn" {
  description = "The audit archive bucket (Object Lock, SSE-KMS): NAX audit worker's S3 bucket."
  value       = aws_s3_bucket.audit.arn
}

output "audit_bucket_name" {
  description = "The audit archive bucket's name (the worker's bucket setting)."
  value       = aws_s3_bucket.audit.id
}

output "audit_archive_policy_arn" {
  description = "IAM policy for the audit worker's task role (put/get/list under audit/, the KMS key via S3)."
  value       = aws_iam_policy.audit_archive.arn
}

# --- network, edge, alarms (network.tf, edge.tf, api_gateway.tf, alarms.tf) ---

output "vpc_id" {
  description = "The VPC (created here, or var.vpc_id)."
  value       = local.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets of the tasks, the private ALB, the VPC link and Redis."
  value       = local.private_subnet_ids
}

output "public_subnet_ids" {
  description = "Public subnets of the edge ALB (and the NAT gateways of a created network)."
  value       = local.public_subnet_ids
}

output "api_endpoint" {
  description = "Base URL of the REST routes: https://<api_domain_name> when set (CNAME or alias it to api_domain_target), else the execute-api endpoint."
  value       = var.api_domain_name == null ? aws_apigatewayv2_api.rest.api_endpoint : "https://${var.api_domain_name}"
}

output "api_domain_target" {
  description = "With api_domain_name: the regional API Gateway domain name to point the DNS record at (null without)."
  value       = var.api_domain_name == null ? null : aws_apigatewayv2_domain_name.rest[0].domain_name_configuration[0].target_domain_name
}

output "edge_alb_dns_name" {
  description = "DNS name of the internet-facing edge ALB: point the WebSocket host (the name on edge_certificate_arn) at it; clients connect to wss://<host>/ws."
  value       = aws_lb.edge.dns_name
}

output "edge_alb_zone_id" {
  description = "Hosted zone of the edge ALB, for a Route 53 alias record."
  value       = aws_lb.edge.zone_id
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (subscribe the on-call tool; alarm_email subscribes one address)."
  value       = aws_sns_topic.alarms.arn
}

output "metrics_log_group_name" {
  description = "Log group of the collectors' Embedded Metric Format lines (var.metrics_namespace is extracted from it)."
  value       = aws_cloudwatch_log_group.metrics.name
}

# Inputs. Everything environment-specific is a variable. The TLS
# certificates and the central access-log bucket are made elsewhere and
# passed in; the network is created here (network.tf) unless an existing
# VPC is passed in.

variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Base name of the ECS, ALB, Redis, IAM and log resources (suffixed with the environment)."
  type        = string
  default     = "nax-stream"

  validation {
    # ALB and target group names are at most 32 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "name: 2-16 characters, lowercase letters, digits and '-', starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...): suffix of resource names and a tag."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment: 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "resource_prefix" {
  description = "Prefix of the DynamoDB table and SQS queue names (e.g. \"staging-\"). Empty: the names of docs/ARCHITECTURE.md (Users, audit-log-queue.fifo, ...)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{0,20}$", var.resource_prefix))
    error_message = "resource_prefix: at most 20 letters, digits, '_' or '-'."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

# --- network (network.tf; created here unless vpc_id is given) ---

variable "vpc_id" {
  description = "An existing VPC to use instead of the one network.tf creates. With it, pass private_subnet_ids and public_subnet_ids, and provide NAT or VPC endpoints yourself (nothing of network.tf or endpoints.tf is created). Null (the default): this configuration creates the VPC, its subnets, NAT gateways, endpoints and flow logs."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "With vpc_id only: private subnets (at least two, in different AZs) for the tasks, the internal ALB, the API's VPC link and Redis. Empty when the network is created here."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.private_subnet_ids) == 0 || length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids: empty (network created here) or at least two subnets in different AZs (multi-AZ Redis and ALB)."
  }
}

variable "public_subnet_ids" {
  description = "With vpc_id only: public subnets (at least two, in different AZs, routed to an internet gateway) for the internet-facing edge ALB (edge.tf). Empty when the network is created here."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.public_subnet_ids) == 0 || length(var.public_subnet_ids) >= 2
    error_message = "public_subnet_ids: empty (network created here) or at least two subnets in different AZs."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC created here (ignored with vpc_id). Private subnets are its first /20s, public subnets /24s near its top."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr: a valid CIDR block of /16 or larger."
  }
}

variable "availability_zone_count" {
  description = "AZs the created VPC spans (one private and one public subnet, and one NAT gateway unless single_nat_gateway, in each)."
  type        = number
  default     = 2

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 6
    error_message = "availability_zone_count: 2 to 6."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for every AZ instead of one per AZ: cheaper, but an AZ outage then cuts the others' egress (venue, providers, HubSpot). Keep false in production."
  type        = bool
  default     = false
}

variable "alb_ingress_cidrs" {
  description = "Extra CIDR blocks allowed to reach the private ALB on 443 directly (e.g. an operators' VPN). The API's VPC link is always allowed (api_gateway.tf)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.alb_ingress_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "alb_ingress_cidrs: valid CIDR blocks, and not 0.0.0.0/0 (the ALB is private)."
  }
}

variable "alb_certificate_arn" {
  description = "ACM certificate of the private ALB's HTTPS listener. API Gateway's VPC link verifies it against alb_server_name, so it must be a publicly trusted (ACM public) certificate for that name; the name need not resolve in public DNS."
  type        = string
}

variable "alb_server_name" {
  description = "Host name on alb_certificate_arn: the name API Gateway sends (SNI) and verifies when it connects to the private ALB over TLS (api_gateway.tf)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$", var.alb_server_name))
    error_message = "alb_server_name: a DNS name."
  }
}

variable "alb_access_logs_bucket" {
  description = "Existing S3 bucket (the account's central log bucket) receiving the ALB access logs; its policy must allow the regional ELB log delivery."
  type        = string
}

# --- service ---

variable "container_image" {
  description = "Image of the nax-hub container (ECR URI with tag or digest)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ECR repository of container_image: the only repository the execution role may pull from."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecr:", var.ecr_repository_arn))
    error_message = "ecr_repository_arn: an ECR repository ARN."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture: X86_64 or ARM64."
  }
}

variable "task_cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Fargate task memory, MiB."
  type        = number
  default     = 2048
}

variable "desired_count" {
  description = "Running tasks (at least 2: one per AZ survives an AZ loss)."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 2
    error_message = "desired_count: at least 2."
  }
}

variable "health_check_command" {
  description = "Container health check (ECS healthCheck.command). The default is the image's own probe (the distroless image has no shell or curl; docs/CONTAINER.md)."
  type        = list(string)
  default     = ["CMD", "nax-hub", "healthcheck"]
}

variable "container_environment" {
  description = "Extra environment of the container. The hub refuses unknown NAX_* variables at start-up, so add only names its config knows (hub/src/config.rs)."
  type        = map(string)
  default     = {}
}

variable "container_secrets" {
  description = "Extra secrets of the container: environment variable name => Secrets Manager secret ARN (encrypted with this module's KMS key). The execution role may read exactly these and NAX_REDIS_URL."
  type        = map(string)
  default     = {}
}

variable "provider_secret_arns" {
  description = "Secrets Manager secrets the hub and the API-running workers read themselves, while they run: the full ARNs of the secrets that provider settings refer to as aws-sm:<secret-id>[#<json-key>] (refreshed every NAX_SECRETS_TTL_MS, rotated without a restart). Their task roles may read exactly these (encrypted with this module's KMS key or aws/secretsmanager)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.provider_secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:", arn))])
    error_message = "Each entry must be a Secrets Manager secret ARN."
  }
}

variable "log_retention_days" {
  description = "Retention of the task's CloudWatch logs, days (at least a year)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: a CloudWatch retention value of at least 365."
  }
}

# --- Redis ---

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.medium"
}

variable "redis_engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "redis_replicas" {
  description = "Cache clusters in the replication group: one primary and the rest replicas (at least 2 for multi-AZ failover)."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_replicas >= 2 && var.redis_replicas <= 6
    error_message = "redis_replicas: 2 to 6."
  }
}

variable "redis_auth_token" {
  description = "Redis AUTH token (16-128 printable characters, no '@', '\"' or '/'). Kept in Secrets Manager for the task; supply it from a secret store (TF_VAR_redis_auth_token), never a committed file."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.redis_auth_token) >= 16 && length(var.redis_auth_token) <= 128 && can(regex("^[!#-.0-?A-~]+$", var.redis_auth_token))
    error_message = "redis_auth_token: 16-128 printable ASCII characters without space, '\"', '/' or '@'."
  }
}

variable "redis_snapshot_retention_days" {
  description = "Days of automatic Redis snapshots."
  type        = number
  default     = 7
}

variable "worker_task_cpu" {
  description = "CPU units of a nax-worker task."
  type        = number
  default     = 512
}

variable "worker_task_memory" {
  description = "Memory of a nax-worker task, MiB."
  type        = number
  default     = 1024
}

variable "worker_health_check_command" {
  description = "Container health check of the nax-worker tasks (its /health on port 9100), with the image's own probe."
  type        = list(string)
  default     = ["CMD", "nax-hub", "healthcheck", "--url", "http://127.0.0.1:9100/health"]
}

variable "worker_environment" {
  description = "Extra environment of the nax-worker containers (NAX_* names the config knows, e.g. NAX_HUBSPOT_REQUESTS_PER_10S)."
  type        = map(string)
  default     = {}
}

variable "worker_secrets" {
  description = "Extra secrets of the nax-worker containers: variable name => Secrets Manager ARN, e.g. NAX_HUBSPOT_TOKEN."
  type        = map(string)
  default     = {}
}

# --- domain events and reconciliation (eventbridge.tf, reconcile.tf) ---

variable "eventbridge_archive_retention_days" {
  description = "Days the domain-event bus's archive keeps events (for replay)."
  type        = number
  default     = 365

  validation {
    condition     = var.eventbridge_archive_retention_days >= 1
    error_message = "eventbridge_archive_retention_days: at least 1."
  }
}

variable "reconcile_schedule" {
  description = "EventBridge Scheduler expression of the reconciliation pass (UTC)."
  type        = string
  default     = "rate(1 hour)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.reconcile_schedule))
    error_message = "reconcile_schedule: a rate(...) or cron(...) expression."
  }
}

# --- audit archive (audit.tf) ---

variable "audit_retention_days" {
  description = "Retention of every audit archive object, days: its Object Lock (compliance mode) period, nobody can delete or overwrite it sooner, and the age at which the lifecycle rule expires it (docs/AUDIT.md, Retention)."
  type        = number
  default     = 2557

  validation {
    condition     = var.audit_retention_days >= 365
    error_message = "audit_retention_days: at least 365."
  }
}

variable "audit_transition_days" {
  description = "Days after which audit archive objects move to Glacier Instant Retrieval."
  type        = number
  default     = 90

  validation {
    condition     = var.audit_transition_days >= 30
    error_message = "audit_transition_days: at least 30 (S3's minimum before a transition out of Standard)."
  }
}

# --- the public edge (edge.tf, api_gateway.tf, waf.tf) ---

variable "edge_certificate_arn" {
  description = "ACM certificate (public, in var.region) of the internet-facing edge ALB, which carries the WebSocket path (edge.tf)."
  type        = string
}

variable "edge_path_patterns" {
  description = "Paths the edge ALB forwards to the hub (at most 5). The default is the WebSocket endpoint only; REST goes through API Gateway. Add \"/*\" to serve the trading page and its REST calls on the edge hostname too (one origin, see README)."
  type        = list(string)
  default     = ["/ws"]

  validation {
    condition     = length(var.edge_path_patterns) >= 1 && length(var.edge_path_patterns) <= 5
    error_message = "edge_path_patterns: 1 to 5 path patterns (an ALB rule condition's limit)."
  }
}

variable "api_domain_name" {
  description = "Custom domain of the REST API (e.g. api.example.com). Null: clients use the execute-api endpoint. When set, the execute-api endpoint is disabled so every request goes through the domain."
  type        = string
  default     = null
}

variable "api_certificate_arn" {
  description = "ACM certificate (public, in var.region) for api_domain_name. Null: edge_certificate_arn (e.g. a certificate for both names)."
  type        = string
  default     = null
}

variable "api_throttling_rate_limit" {
  description = "API Gateway stage throttle: steady requests per second across all clients (each client's own limits are the hub's, in Redis)."
  type        = number
  default     = 1000
}

variable "api_throttling_burst_limit" {
  description = "API Gateway stage throttle: burst of requests above the steady rate."
  type        = number
  default     = 2000
}

variable "waf_edge_rate_limit" {
  description = "WAF rate-based rule of the edge ALB: requests per client IP per 5 minutes before it is blocked (WebSocket upgrades: a client reconnects a few times a minute at most)."
  type        = number
  default     = 1000

  validation {
    condition     = var.waf_edge_rate_limit >= 100
    error_message = "waf_edge_rate_limit: at least 100 (WAF's minimum)."
  }
}

variable "waf_api_rate_limit" {
  description = "WAF rate-based rule of the REST path (private ALB behind API Gateway): requests per forwarded client IP per 5 minutes."
  type        = number
  default     = 6000

  validation {
    condition     = var.waf_api_rate_limit >= 100
    error_message = "waf_api_rate_limit: at least 100 (WAF's minimum)."
  }
}

# --- traces and metrics (telemetry.tf) ---

variable "metrics_namespace" {
  description = "CloudWatch namespace the ADOT collector sidecars export the services' metrics to (awsemf), and the custom-metric alarms and scaling policies read."
  type        = string
  default     = "NAX/Stream"
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image of the sidecars, pinned (a tag, better a digest; never latest)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"

  validation {
    condition     = !endswith(var.otel_collector_image, ":latest") && can(regex("[:@]", var.otel_collector_image))
    error_message = "otel_collector_image: pin a tag or a digest (not latest)."
  }
}

# --- alarms (alarms.tf) ---

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (confirm the subscription from the mail). Null: subscribe the on-call tool to the topic (output alarm_topic_arn) yourself."
  type        = string
  default     = null
}

variable "rest_p99_latency_alarm_seconds" {
  description = "Alarm when the REST p99 latency stays above this many seconds, read as more than 1 % of requests slower: the hub's nax_http_slow_requests_total over nax_http_requests_total (alarms.tf), the slow threshold set from this value (NAX_SLOW_REQUEST_MS in ecs.tf)."
  type        = number

  default = 0.5
}

variable "ws_connections_per_task_alarm" {
  description = "Alarm when one hub task holds this many WebSocket connections (nax_connections); the hub refuses upgrades beyond max_connections (20 000 by default)."
  type        = number
  default     = 20000
}

variable "alb_5xx_alarm_percent" {
  description = "Alarm when target 5xx answers exceed this share of an ALB's requests, percent."
  type        = number
  default     = 1
}

variable "queue_age_alarm_seconds" {
  description = "Alarm when the oldest message of a queue is older than this, seconds, by queue (audit, hubspot, webhook, domain_events)."
  type        = map(number)
  default = {
    audit         = 900
    hubspot       = 3600
    webhook       = 900
    domain_events = 86400
  }

  validation {
    condition     = alltrue([for k in ["audit", "hubspot", "webhook", "domain_events"] : contains(keys(var.queue_age_alarm_seconds), k)])
    error_message = "queue_age_alarm_seconds: a value for each of audit, hubspot, webhook, domain_events."
  }
}

variable "ecs_cpu_alarm_percent" {
  description = "Alarm when a service's average CPU stays above this, percent."
  type        = number
  default     = 85
}

variable "ecs_memory_alarm_percent" {
  description = "Alarm when a service's busiest task's memory stays above this, percent."
  type        = number
  default     = 85
}

variable "redis_memory_alarm_percent" {
  description = "Alarm when a Redis node's DatabaseMemoryUsagePercentage stays above this, percent."
  type        = number
  default     = 80
}

# --- autoscaling (autoscaling.tf) ---

variable "hub_min_tasks" {
  description = "Fewest nax-hub tasks autoscaling keeps (at least 2: one per AZ survives an AZ loss)."
  type        = number
  default     = 2

  validation {
    condition     = var.hub_min_tasks >= 2
    error_message = "hub_min_tasks: at least 2."
  }
}

variable "hub_max_tasks" {
  description = "Most nax-hub tasks autoscaling starts."
  type        = number
  default     = 20
}

variable "worker_min_tasks" {
  description = "Fewest tasks of a scaled-out worker service (the webhook applier; the audit archiver and the CRM sync stay at their fixed count, worker.tf)."
  type        = number
  default     = 2
}

variable "worker_max_tasks" {
  description = "Most tasks of a scaled-out worker service."
  type        = number
  default     = 20
}

variable "autoscaling_cpu_target_percent" {
  description = "Target-tracking goal for the services' average CPU, percent."
  type        = number
  default     = 60
}

variable "autoscaling_memory_target_percent" {
  description = "Target-tracking goal for the services' average memory, percent."
  type        = number
  default     = 70
}

variable "hub_requests_per_target" {
  description = "Target-tracking goal for ALB requests per hub task per minute (the private ALB: the REST path)."
  type        = number
  default     = 3000
}

variable "hub_connections_target_per_task" {
  description = "Target-tracking goal for WebSocket connections per hub task (average nax_connections), well below max_connections so new tasks start before any task refuses upgrades."
  type        = number
  default     = 10000
}

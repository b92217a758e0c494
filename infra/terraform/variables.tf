# Inputs. Everything environment-specific is a variable; the network
# (VPC, private subnets), the TLS certificate of the ALB and the central
# access-log bucket are made elsewhere and passed in.

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

# --- network (not created here) ---

variable "vpc_id" {
  description = "VPC of the service, the ALB and Redis."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two, in different AZs) for the tasks, the internal ALB and Redis."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids: at least two subnets in different AZs (multi-AZ Redis and ALB)."
  }
}

variable "alb_ingress_cidrs" {
  description = "CIDR blocks allowed to reach the private ALB on 443 (e.g. the VPC's, or the BFF gateway's subnets)."
  type        = list(string)

  validation {
    condition     = length(var.alb_ingress_cidrs) > 0 && alltrue([for c in var.alb_ingress_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "alb_ingress_cidrs: at least one valid CIDR, and not 0.0.0.0/0 (the ALB is private)."
  }
}

variable "alb_certificate_arn" {
  description = "ACM certificate (e.g. from a private CA) of the ALB's HTTPS listener."
  type        = string
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
  description = "Container health check (ECS healthCheck.command). The default needs curl in the image; a distroless image ships its own probe."
  type        = list(string)
  default     = ["CMD-SHELL", "curl -fsS http://127.0.0.1:8080/health || exit 1"]
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
  description = "Container health check of the nax-worker tasks (its /health on port 9100). The default needs curl in the image."
  type        = list(string)
  default     = ["CMD-SHELL", "curl -fsS http://127.0.0.1:9100/health || exit 1"]
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
  description = "Object Lock (compliance mode) retention of every audit archive object, days: nobody can delete or overwrite it sooner."
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

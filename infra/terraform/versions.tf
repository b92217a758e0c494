# Terraform and provider versions, and the AWS provider itself.
#
# This is a root configuration for one environment of the NA-X Stream BFF
# (docs/ARCHITECTURE.md): the operational tables, the event queues, Redis,
# the ECS services, and the network, public entry, telemetry, alarms and
# autoscaling around them. The network is created here unless an existing
# VPC is passed in (network.tf, variables.tf).

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "nax-stream"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.region

  # Prefix of the ECS, ALB, Redis, IAM and log resources.
  name = "${var.name}-${var.environment}"
}

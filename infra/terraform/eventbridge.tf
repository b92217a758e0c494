# The domain-event bus (docs/ARCHITECTURE.md "Defaults and production";
# api/src/events/eventbridge.rs). The outbox relay puts the domain events
# on it after SQS (`order.filled`, `kyc.status_changed`, and
# `deposit.state_changed` / `withdrawal.state_changed` once completed),
# source `nax.stream`, detail-type the event type, detail the event's
# JSON. Set NAX_EVENTBRIDGE_BUS to the bus name (output
# `eventbridge_bus_name`) for the hub to publish there.
#
# One rule routes them to `domain-events-queue` (standard, with its DLQ),
# for downstream consumers (notifications, analytics), and an archive
# keeps them for replay. No rule targets `hubspot-sync-queue`: the SQS
# publisher already sends those events there, so a rule would deliver
# every one twice.
#
# The queue is encrypted with a key of its own: EventBridge must use the
# key to send to the queue, and only for this rule (aws:SourceArn), which
# the main key's policy (kms.tf) does not allow anyone outside the account.

locals {
  domain_event_types = [
    "order.filled",
    "deposit.state_changed",
    "withdrawal.state_changed",
    "kyc.status_changed",
  ]
}

resource "aws_cloudwatch_event_bus" "domain" {
  name = "${local.name}-domain-events"
}

# Every domain event, kept for replay into the bus (e.g. after a consumer
# bug).
resource "aws_cloudwatch_event_archive" "domain" {
  name             = "${local.name}-domain-events"
  description      = "Every nax.stream domain event on ${aws_cloudwatch_event_bus.domain.name}"
  event_source_arn = aws_cloudwatch_event_bus.domain.arn
  retention_days   = var.eventbridge_archive_retention_days
  event_pattern = jsonencode({
    source = ["nax.stream"]
  })
}

resource "aws_cloudwatch_event_rule" "domain_events" {
  name           = "${local.name}-domain-events"
  description    = "nax.stream domain events to domain-events-queue"
  event_bus_name = aws_cloudwatch_event_bus.domain.name
  event_pattern = jsonencode({
    source        = ["nax.stream"]
    "detail-type" = local.domain_event_types
  })
}

resource "aws_cloudwatch_event_target" "domain_events_queue" {
  rule           = aws_cloudwatch_event_rule.domain_events.name
  event_bus_name = aws_cloudwatch_event_bus.domain.name
  target_id      = "domain-events-queue"
  arn            = aws_sqs_queue.domain_events.arn

  # EventBridge retries a failed delivery for up to a day.
  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }
}

# --- the queue and its dead-letter queue ---

# Visibility 60 s: a consumer handles one notification or analytics row
# per message. Five receives, then the DLQ (14 days, longer than the
# queue's 4 days of retention).
resource "aws_sqs_queue" "domain_events_dlq" {
  name                              = "${var.resource_prefix}domain-events-queue-dlq"
  message_retention_seconds         = 14 * local.day
  kms_master_key_id                 = aws_kms_key.domain_events.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "domain_events" {
  name                              = "${var.resource_prefix}domain-events-queue"
  visibility_timeout_seconds        = 60
  message_retention_seconds         = 4 * local.day
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = aws_kms_key.domain_events.arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.domain_events_dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "domain_events_dlq" {
  queue_url = aws_sqs_queue.domain_events_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.domain_events.arn]
  })
}

# EventBridge may send, for this rule only; nothing over plain HTTP.
data "aws_iam_policy_document" "domain_events_queue" {
  statement {
    sid       = "EventBridgeRuleSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.domain_events.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.domain_events.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.domain_events.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "domain_events" {
  queue_url = aws_sqs_queue.domain_events.id
  policy    = data.aws_iam_policy_document.domain_events_queue.json
}

data "aws_iam_policy_document" "domain_events_dlq" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.domain_events_dlq.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "domain_events_dlq" {
  queue_url = aws_sqs_queue.domain_events_dlq.id
  policy    = data.aws_iam_policy_document.domain_events_dlq.json
}

# --- the queue's key ---

resource "aws_kms_key" "domain_events" {
  description             = "${local.name}: domain-events-queue and its DLQ (EventBridge sends with it)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.domain_events_key.json
}

resource "aws_kms_alias" "domain_events" {
  name          = "alias/${local.name}-domain-events"
  target_key_id = aws_kms_key.domain_events.key_id
}

data "aws_iam_policy_document" "domain_events_key" {
  # A key policy, which checkov judges as an identity policy: Resource "*"
  # is this key only (see kms.tf).
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key only; the root statement is AWS's default delegation to IAM.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key only; the root statement is AWS's default delegation to IAM.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is the only way a key policy can name its own key.
  statement {
    sid       = "AccountAdministersAndDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # EventBridge encrypts what it sends to the queue, for this rule only.
  statement {
    sid       = "EventBridgeRuleEncryptsForTheQueue"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.domain_events.arn]
    }
  }
}

# --- the hub puts events on the bus ---

data "aws_iam_policy_document" "task_eventbridge" {
  statement {
    sid       = "PutDomainEvents"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.domain.arn]
    condition {
      test     = "StringEquals"
      variable = "events:source"
      values   = ["nax.stream"]
    }
  }
}

resource "aws_iam_role_policy" "task_eventbridge" {
  name   = "nax-hub-eventbridge"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_eventbridge.json
}

output "eventbridge_bus_name" {
  description = "The domain-event bus: NAX_EVENTBRIDGE_BUS of the hub."
  value       = aws_cloudwatch_event_bus.domain.name
}

output "domain_events_queue_url" {
  description = "URL of domain-events-queue (the bus's domain events, for downstream consumers)."
  value       = aws_sqs_queue.domain_events.url
}

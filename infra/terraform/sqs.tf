# The event queues (docs/ARCHITECTURE.md "Defaults and production"). The outbox relay sends each
# committed event to its queue; the consumers (the audit archiver, the
# HubSpot sync, the webhook applier) are the nax-worker services of
# worker.tf. Each queue has its own dead-letter queue
# that takes a message after `max_receive_count` failed receives, and
# only its own source queue may redrive into it. Everything is encrypted
# with the customer key and reachable over TLS only.

locals {
  day = 86400

  queues = {
    # FIFO, message group = the acting user id: one user's audit events
    # are consumed in commit order, different users' in parallel.
    # Content-based deduplication is off: the relay sets the
    # deduplication id to the event id, so a batch re-sent after a crash
    # (same event ids) is dropped by SQS within its 5-minute window, and
    # by the consumer (which deduplicates by id) after it. Deduplication
    # and throughput per message group (high-throughput FIFO).
    # Visibility 60 s: an audit write is one put; a failed one comes back
    # within a minute, and a group stays blocked no longer than that.
    # Retention 7 days: room for a long consumer outage. Two receives then
    # the DLQ: an audit event that fails twice is malformed, and it blocks
    # its user's group until it leaves.
    audit = {
      name               = "audit-log-queue"
      fifo               = true
      max_receive_count  = 2
      visibility_timeout = 60
      retention          = 7 * local.day
    }
    # HubSpot sync: visibility 180 s covers a contact upsert with HubSpot's
    # rate-limit backoff (429 Retry-After up to ~10 s, a few retries) and
    # a batch of 10. Five receives: HubSpot outages are common and
    # transient. Retention 4 days.
    hubspot = {
      name               = "hubspot-sync-queue"
      fifo               = false
      max_receive_count  = 5
      visibility_timeout = 180
      retention          = 4 * local.day
    }
    # Webhook processing: visibility 120 s covers a provider call-back
    # plus the store and venue calls it causes (2 s timeouts, 3 attempts
    # each). Three receives. Retention 4 days.
    webhook = {
      name               = "webhook-processing-queue"
      fifo               = false
      max_receive_count  = 3
      visibility_timeout = 120
      retention          = 4 * local.day
    }
  }

  queue_suffix = { for k, q in local.queues : k => q.fifo ? ".fifo" : "" }
}

# Dead-letter queues: 14 days (the maximum), longer than any source's
# retention, because a message's age counts from its first enqueue, not
# from its move to the DLQ.
resource "aws_sqs_queue" "dlq" {
  for_each = local.queues

  name                              = "${var.resource_prefix}${each.value.name}-dlq${local.queue_suffix[each.key]}"
  fifo_queue                        = each.value.fifo
  content_based_deduplication       = each.value.fifo ? false : null
  message_retention_seconds         = 14 * local.day
  kms_master_key_id                 = aws_kms_key.main.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "main" {
  for_each = local.queues

  name                              = "${var.resource_prefix}${each.value.name}${local.queue_suffix[each.key]}"
  fifo_queue                        = each.value.fifo
  content_based_deduplication       = each.value.fifo ? false : null
  deduplication_scope               = each.value.fifo ? "messageGroup" : null
  fifo_throughput_limit             = each.value.fifo ? "perMessageGroupId" : null
  visibility_timeout_seconds        = each.value.visibility_timeout
  message_retention_seconds         = each.value.retention
  receive_wait_time_seconds         = 20 # long polling for the consumers
  kms_master_key_id                 = aws_kms_key.main.arn
  kms_data_key_reuse_period_seconds = 300 # fewer KMS calls; 5 minutes is the default

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = each.value.max_receive_count
  })
}

# Only the DLQ's own source queue may move messages into it.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main[each.key].arn]
  })
}

# Every queue refuses requests not made over TLS.
data "aws_iam_policy_document" "queue_tls_only" {
  for_each = merge(
    { for k, q in aws_sqs_queue.main : k => q.arn },
    { for k, q in aws_sqs_queue.dlq : "${k}-dlq" => q.arn },
  )

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]
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

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = merge(
    { for k, q in aws_sqs_queue.main : k => q.id },
    { for k, q in aws_sqs_queue.dlq : "${k}-dlq" => q.id },
  )

  queue_url = each.value
  policy    = data.aws_iam_policy_document.queue_tls_only[each.key].json
}

# The customer-managed KMS key that encrypts everything at rest here: the
# DynamoDB tables, the SQS queues and their DLQs, Redis, the Redis token
# secret, the log groups (logs.tf), the alarm topic, and the hub's data
# key (which seals TOTP seeds and password hashes inside the items). One key per environment keeps the
# policy in one place; rotation is yearly and automatic.

resource "aws_kms_key" "main" {
  description             = "${local.name}: DynamoDB, SQS, ElastiCache, Secrets Manager and CloudWatch Logs encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  # This document is a KMS key policy, which checkov judges as if it were
  # an identity policy. In a key policy Resource "*" means this key and
  # nothing else (its ARN does not exist before the key), and the
  # account-root statement with kms:* is the AWS default key policy that
  # delegates use to IAM (the task role's narrow policy in iam.tf).
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key only; the root statement is AWS's default delegation to IAM.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key only; the root statement is AWS's default delegation to IAM.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is the only way a key policy can name its own key.
  # The account administers the key and delegates use to IAM policies: the
  # task role's policy (iam.tf) grants exactly the uses the service needs:
  # through DynamoDB and SQS, and directly only for the hub's own data key
  # (GenerateDataKey/Decrypt with its encryption context). DynamoDB, SQS, ElastiCache and Secrets
  # Manager call KMS on behalf of the caller, so they need no statement of
  # their own.
  statement {
    sid       = "AccountAdministersAndDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts as its own service principal, limited to
  # this configuration's log groups (logs.tf).
  statement {
    sid = "CloudWatchLogsForTheLogGroups"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = local.log_group_arns
    }
  }

  # CloudWatch alarms publish to the encrypted alarm topic (alarms.tf):
  # SNS asks KMS for a data key on the publisher's behalf, so the
  # publisher (CloudWatch) needs these two on the key. This is AWS's
  # documented statement for alarms to an encrypted topic, without a
  # condition: a condition key SNS does not pass on would silently stop
  # every alarm notification. Who may publish is the topic policy's
  # business (this account's alarms only).
  statement {
    sid       = "CloudWatchAlarmsToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

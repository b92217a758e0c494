# The two roles of the task. The execution role is used by ECS itself
# (pull the image, write the log stream, read the container secrets); the
# task role is what the hub's AWS SDK calls run as. Both are least
# privilege: named resources only (ECR login excepted: it has no resource),
# no wildcard actions.

# The task role: assumed by ECS tasks of this account only (the
# confused-deputy conditions AWS documents for task roles).
data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

# The store and the market archive, as the hub and the workers use them
# (api/src/store, api/src/market_archive): conditional puts and updates,
# transactions (authorized per item as Put/Update/Delete/ConditionCheck),
# key reads, queries of the tables and their indexes, batched writes,
# DescribeTable for readiness. No Scan, no table administration.
data "aws_iam_policy_document" "operational_tables" {
  statement {
    sid = "OperationalTables"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DescribeTable",
    ]
    resources = flatten([
      for t in values(local.tables) : [t.arn, "${t.arn}/index/*"]
    ])
  }
}

# --- task role: the hub's own permissions ---

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  description        = "nax-hub task: its tables, queues and KMS key"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
}

data "aws_iam_policy_document" "task" {
  source_policy_documents = [
    data.aws_iam_policy_document.operational_tables.json,
    data.aws_iam_policy_document.provider_secrets.json,
  ]

  # The store (api/src/store): conditional puts and updates, transactions
  # (TransactWriteItems is authorized per item as Put/Update/Delete/
  # ConditionCheck), key reads, queries of the tables and their indexes,
  # outbox deletes in batches, DescribeTable for readiness; the market
  # archive (api/src/market_archive): batched puts and queries. No Scan,
  # no table administration.

  # The outbox relay only sends; consuming is the consumers' role, and
  # the DLQs are for operators.
  statement {
    sid = "EventQueuesSendOnly"
    actions = [
      "sqs:SendMessage",
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
    ]
    resources = [for q in values(aws_sqs_queue.main) : q.arn]
  }

  # The key, only as DynamoDB and SQS use it on the hub's behalf.
  statement {
    sid = "KeyThroughDynamoDbAndSqs"
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

  # The hub's own data key (api/src/seal): generated once per deployment
  # and unwrapped by every task at start, directly (not through a
  # service), and only with the encryption context the hub sets, so the
  # role cannot decrypt anything else of this key this way.
  statement {
    sid = "StoreDataKey"
    actions = [
      "kms:GenerateDataKey",
      "kms:Decrypt",
    ]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:nax-purpose"
      values   = ["store-data-key"]
    }
  }
}

# The provider secrets the hub reads itself (aws-sm: references,
# api/src/secrets), refreshed while it runs: exactly these (none: no
# statement), and the key only as Secrets Manager uses it for them.
data "aws_iam_policy_document" "provider_secrets" {
  dynamic "statement" {
    for_each = length(var.provider_secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadTheProviderSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = distinct(var.provider_secret_arns)
    }
  }

  dynamic "statement" {
    for_each = length(var.provider_secret_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptTheProviderSecrets"
      actions   = ["kms:Decrypt"]
      resources = [aws_kms_key.main.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "nax-hub"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- execution role: what ECS does for the task ---

data "aws_iam_policy_document" "execution_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  description        = "ECS on behalf of the nax-hub task: image pull, logs, secrets"
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json
}

data "aws_iam_policy_document" "execution" {
  # GetAuthorizationToken has no resource-level permissions.
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

  # Exactly the secrets the container gets (none: no statement).
  dynamic "statement" {
    for_each = length(local.container_secrets) > 0 ? [1] : []
    content {
      sid       = "ReadTheContainerSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = distinct(values(local.container_secrets))
    }
  }

  dynamic "statement" {
    for_each = length(local.container_secrets) > 0 ? [1] : []
    content {
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
}

resource "aws_iam_role_policy" "execution" {
  name   = "nax-hub-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

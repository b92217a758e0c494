# The audit archive (docs/AUDIT.md): an S3 bucket the audit worker
# (`nax-worker audit`) writes hash-chained, gzip NDJSON objects to, under
# `audit/YYYY/MM/DD/HH/`. Tamper evidence comes from the chains; tamper
# resistance from Object Lock in compliance mode: no one, root included,
# can delete or overwrite an object version before its retention ends.
# Objects are encrypted with the environment's KMS key (kms.tf; S3 calls
# KMS on behalf of the writer, so the key policy needs no statement of its
# own: the worker's role gets kms:GenerateDataKey/Decrypt via S3 below).
#
# One archiver at a time: the worker service that runs `nax-worker audit`
# must have desired_count = 1 (two would fork the chains; docs/AUDIT.md).

resource "aws_s3_bucket" "audit" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice per environment (needs a second region's bucket and key); Object Lock and versioning already protect the records here.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object-created events; the worker's metrics (nax_audit_objects_total) and verify watch the archive.
  bucket              = "${local.name}-audit-${local.account_id}"
  object_lock_enabled = true
  # Locked objects cannot be deleted before their retention ends anyway;
  # refusing to destroy a non-empty bucket is the safe default.
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "audit" {
  bucket = aws_s3_bucket.audit.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.audit_retention_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.audit]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "audit" {
  bucket                  = aws_s3_bucket.audit.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Server access logs go to the account's central log bucket (the one the
# ALB logs to).
resource "aws_s3_bucket_logging" "audit" {
  bucket        = aws_s3_bucket.audit.id
  target_bucket = var.alb_access_logs_bucket
  target_prefix = "s3/${aws_s3_bucket.audit.id}/"
}

# The retention (docs/AUDIT.md, "Retention"): old objects move to a
# cheaper class after audit_transition_days (reads stay immediate for
# verify and export); the current version of each object expires (a
# delete marker) after audit_retention_days, the same period as its
# Object Lock, and a version that became noncurrent (expired or
# overwritten) is removed 30 days later, never before its own lock ends:
# S3 refuses to delete a locked version, lifecycle rules included.
# Delete markers left with no versions behind them are removed, and so
# are incomplete multipart uploads (the worker does single PUTs).
resource "aws_s3_bucket_lifecycle_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id

  rule {
    id     = "archive-tiering"
    status = "Enabled"
    filter {
      prefix = "audit/"
    }
    transition {
      days          = var.audit_transition_days
      storage_class = "GLACIER_IR"
    }
    expiration {
      days = var.audit_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }

  rule {
    id     = "expired-delete-markers"
    status = "Enabled"
    filter {
      prefix = "audit/"
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.audit]
}

# TLS only.
data "aws_iam_policy_document" "audit_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.audit.arn,
      "${aws_s3_bucket.audit.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "audit" {
  bucket     = aws_s3_bucket.audit.id
  policy     = data.aws_iam_policy_document.audit_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.audit]
}

# What the audit worker's task role needs: put and read objects under
# audit/, list them, and use the key through S3 only. No delete: the
# worker never deletes, and Object Lock would refuse it anyway. Attach it
# to the role of the service running `nax-worker audit` (and of whoever
# runs `nax-worker audit verify` / `export`, which need only the reads).
data "aws_iam_policy_document" "audit_archive" {
  statement {
    sid       = "ArchiveObjects"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${aws_s3_bucket.audit.arn}/audit/*"]
  }
  statement {
    sid       = "ListArchive"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.audit.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["audit/", "audit/*"]
    }
  }
  statement {
    sid       = "EncryptThroughS3"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "audit_archive" {
  name        = "${local.name}-audit-archive"
  description = "The audit worker: write and read the audit archive (docs/AUDIT.md)."
  policy      = data.aws_iam_policy_document.audit_archive.json
}

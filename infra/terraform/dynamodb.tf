# The operational tables (docs/ARCHITECTURE.md "Defaults and production", and what
# api/src/store holds beyond them). Every table: on-demand capacity,
# point-in-time recovery, encryption with the customer key, deletion
# protection. Attribute names are the record fields of
# api/src/store/records.rs; only key attributes are declared here.
#
# TTL attributes (`expires_at`) must be written as a Number (Unix epoch
# seconds): DynamoDB ignores a TTL attribute of any other type, so the
# RFC 3339 string of the record is not enough on its own.

locals {
  table_prefix = var.resource_prefix
}

# Users: pk user_id. A GSI is eventually consistent and cannot enforce
# uniqueness, so the store keeps the unique email as a guard item in this
# table (user_id = "EMAIL#<normalized email>", owner = the user's id),
# put with attribute_not_exists in the same TransactWriteItems as the
# user. user_by_email reads the guard, then the user, both strongly
# consistent (api/src/store/dynamo.rs), so a user can log in right after
# registering. `email-index` (the user item's normalized `email`; guards
# have none) serves other look-ups, e.g. back-office; it projects keys
# only: the caller reads the user (with its password hash) by key.
resource "aws_dynamodb_table" "users" {
  name                        = "${local.table_prefix}Users"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  deletion_protection_enabled = true

  attribute {
    name = "user_id"
    type = "S"
  }

  attribute {
    name = "email"
    type = "S"
  }

  global_secondary_index {
    name            = "email-index"
    hash_key        = "email"
    projection_type = "KEYS_ONLY"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# Transactions: pk user_id, sk transaction_id (UUIDv7, time-ordered, so a
# descending Query lists a user's transactions newest first).
# `status-index` (status + created_at) lets back-office workers find, for
# example, every `pending` deposit oldest first, across users; it
# projects everything so they need no second read.
resource "aws_dynamodb_table" "transactions" {
  name                        = "${local.table_prefix}Transactions"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  range_key                   = "transaction_id"
  deletion_protection_enabled = true

  attribute {
    name = "user_id"
    type = "S"
  }

  attribute {
    name = "transaction_id"
    type = "S"
  }

  attribute {
    name = "status"
    type = "S"
  }

  attribute {
    name = "created_at"
    # RFC 3339 UTC written with a fixed number of fractional digits
    # (e.g. %.6f), so that string order is time order.
    type = "S"
  }

  global_secondary_index {
    name            = "status-index"
    hash_key        = "status"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# WebhookReceipts: pk provider, sk webhook_id; a conditional put
# (attribute_not_exists) rejects a redelivered webhook. Kept 30 days
# (docs/ARCHITECTURE.md) by TTL on expires_at.
resource "aws_dynamodb_table" "webhook_receipts" {
  name                        = "${local.table_prefix}WebhookReceipts"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "provider"
  range_key                   = "webhook_id"
  deletion_protection_enabled = true

  attribute {
    name = "provider"
    type = "S"
  }

  attribute {
    name = "webhook_id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# ChainCredits: pk transfer = "<asset>#<tx hash>#<output>" (the hash in
# its network's canonical spelling; output "index:<n>", or
# "address:<destination>" when custody gives no index). One item per
# credited on-chain transfer, put with attribute_not_exists in the same
# TransactWriteItems as the deposit it credits, so a transfer notified
# under several custody ids is credited once. No TTL: it must outlive
# the 30-day webhook receipts.
resource "aws_dynamodb_table" "chain_credits" {
  name                        = "${local.table_prefix}ChainCredits"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "transfer"
  deletion_protection_enabled = true

  attribute {
    name = "transfer"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# SyncCheckpoints: pk service_name, sk sync_type (e.g. the HubSpot sync's
# last position).
resource "aws_dynamodb_table" "sync_checkpoints" {
  name                        = "${local.table_prefix}SyncCheckpoints"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "service_name"
  range_key                   = "sync_type"
  deletion_protection_enabled = true

  attribute {
    name = "service_name"
    type = "S"
  }

  attribute {
    name = "sync_type"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# IdempotencyKeys: pk user_id, sk scope_key = "<scope>#<key>" (scope:
# order, withdraw, fiat_deposit, fiat_withdraw). Written in the same
# transaction as the transaction it created; kept (no TTL: docs/API.md gives
# the keys no expiry).
resource "aws_dynamodb_table" "idempotency_keys" {
  name                        = "${local.table_prefix}IdempotencyKeys"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  range_key                   = "scope_key"
  deletion_protection_enabled = true

  attribute {
    name = "user_id"
    type = "S"
  }

  attribute {
    name = "scope_key"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# RefreshFamilies: pk family_id; one item per login, versioned (refresh
# rotation and reuse detection). Expired families go by TTL on expires_at
# (the refresh-token lifetime, 7 days by default).
resource "aws_dynamodb_table" "refresh_families" {
  name                        = "${local.table_prefix}RefreshFamilies"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "family_id"
  deletion_protection_enabled = true

  attribute {
    name = "family_id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# Outbox: pk shard, sk position. Events are put in the same
# TransactWriteItems as the state change they describe; the relay
# queries each shard in position order, merges the shards by position,
# sends to SQS, then deletes what was sent. shard = "00".."15", from a
# hash of the event's user (one user's events share a shard); position =
# "<epoch microseconds, 20 digits>-<node id>-<shard>", time-ordered (see
# api/src/store/dynamo/outbox.rs for the exact ordering guarantee).
resource "aws_dynamodb_table" "outbox" {
  name                        = "${local.table_prefix}Outbox"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "shard"
  range_key                   = "position"
  deletion_protection_enabled = true

  attribute {
    name = "shard"
    type = "S"
  }

  attribute {
    name = "position"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# MarketArchive: pk series, sk position. The hub's market archive
# (api/src/market_archive/dynamo.rs): the public trades it streamed
# (series "<pair>#trades", position "<venue_ts, 20 digits>#<trade id, 20
# digits>") and the closed candles it built (series
# "<pair>#candles#<interval>", position "<start, 20 digits>"). Items
# expire by TTL: trades 2 days after they were written (enough to rebuild
# every open candle and the 24 h statistics), candles after 1,000 of
# their intervals. Reads filter expired items themselves (TTL deletes
# lazily).
resource "aws_dynamodb_table" "market_archive" {
  name                        = "${local.table_prefix}MarketArchive"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "series"
  range_key                   = "position"
  deletion_protection_enabled = true

  attribute {
    name = "series"
    type = "S"
  }

  attribute {
    name = "position"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

locals {
  tables = {
    users            = aws_dynamodb_table.users
    transactions     = aws_dynamodb_table.transactions
    webhook_receipts = aws_dynamodb_table.webhook_receipts
    chain_credits    = aws_dynamodb_table.chain_credits
    sync_checkpoints = aws_dynamodb_table.sync_checkpoints
    idempotency_keys = aws_dynamodb_table.idempotency_keys
    refresh_families = aws_dynamodb_table.refresh_families
    outbox           = aws_dynamodb_table.outbox
    market_archive   = aws_dynamodb_table.market_archive
  }
}

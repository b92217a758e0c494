# WAF: two regional web ACLs with AWS managed rule groups and a
# rate-based rule, logging what they block or count to CloudWatch Logs.
#
# - `edge`, on the edge ALB (edge.tf, the WebSocket path): the client is
#   the TCP peer, so the IP reputation list and the per-IP rate limit
#   see it directly.
# - `api`, on the private ALB, which API Gateway's VPC link reaches (WAF
#   cannot be associated with an HTTP API stage; api_gateway.tf). Here
#   the TCP peer is the VPC link, so the reputation list (which reads
#   only the peer) is left out and the rate limit counts the first
#   X-Forwarded-For address, which API Gateway sets. A client can put
#   its own first entry in that header, so this limit is a backstop; the
#   per-client limits that hold are the hub's (the right-most untrusted
#   entry, docs/SECURITY.md) and the stage throttle caps the total.
#   Requests without the header (internal callers of alb_ingress_cidrs)
#   are not rate-limited here.
#
# Rule overrides, both ACLs: CommonRuleSet's NoUserAgent_HEADER only
# counts (programmatic WebSocket and REST clients, e.g. tokio-tungstenite,
# send no User-Agent). The api ACL also only counts SizeRestrictions_BODY
# (8 KB): provider webhooks can be larger, and the hub bounds every body
# per route itself (docs/SECURITY.md).

locals {
  web_acls = {
    edge = {
      resource_arn      = aws_lb.edge.arn
      rate_limit        = var.waf_edge_rate_limit
      forwarded_ip      = false
      ip_reputation     = true
      count_only_common = ["NoUserAgent_HEADER"]
    }
    api = {
      resource_arn      = aws_lb.hub.arn
      rate_limit        = var.waf_api_rate_limit
      forwarded_ip      = true
      ip_reputation     = false
      count_only_common = ["NoUserAgent_HEADER", "SizeRestrictions_BODY"]
    }
  }

  # Managed rule groups after the optional reputation list, in order.
  managed_rule_groups = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet"]
}

resource "aws_wafv2_web_acl" "main" {
  for_each = local.web_acls

  name        = "${local.name}-${each.key}"
  description = "${local.name} ${each.key}: AWS managed rules and a rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = each.value.ip_reputation ? [1] : []
    content {
      name     = "AWSManagedRulesAmazonIpReputationList"
      priority = 0
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = "AWSManagedRulesAmazonIpReputationList"
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-${each.key}-ip-reputation"
        sampled_requests_enabled   = true
      }
    }
  }

  dynamic "rule" {
    for_each = local.managed_rule_groups
    content {
      name     = rule.value
      priority = 1 + rule.key
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value

          dynamic "rule_action_override" {
            for_each = rule.value == "AWSManagedRulesCommonRuleSet" ? each.value.count_only_common : []
            content {
              name = rule_action_override.value
              action_to_use {
                count {}
              }
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-${each.key}-${rule.value}"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "rate-limit-per-client"
    priority = 10
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = each.value.rate_limit
        aggregate_key_type = each.value.forwarded_ip ? "FORWARDED_IP" : "IP"

        dynamic "forwarded_ip_config" {
          for_each = each.value.forwarded_ip ? [1] : []
          content {
            header_name       = "X-Forwarded-For"
            fallback_behavior = "NO_MATCH"
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-${each.key}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name}-${each.key}"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "main" {
  for_each = local.web_acls

  resource_arn = each.value.resource_arn
  web_acl_arn  = aws_wafv2_web_acl.main[each.key].arn
}

# Logs: blocked and counted requests only (the ALBs' access logs already
# hold every request), without the Authorization header.
resource "aws_wafv2_web_acl_logging_configuration" "main" {
  for_each = local.web_acls

  resource_arn            = aws_wafv2_web_acl.main[each.key].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[each.key].arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  logging_filter {
    default_behavior = "DROP"

    filter {
      behavior    = "KEEP"
      requirement = "MEETS_ANY"
      condition {
        action_condition {
          action = "BLOCK"
        }
      }
      condition {
        action_condition {
          action = "COUNT"
        }
      }
    }
  }

  depends_on = [aws_cloudwatch_log_resource_policy.waf]
}

# WAF delivers to CloudWatch Logs through the log delivery service, which
# may write to these two groups only, for this account.
data "aws_iam_policy_document" "waf_logs" {
  statement {
    sid       = "WafLogDelivery"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in values(aws_cloudwatch_log_group.waf) : "${g.arn}:*"]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "waf" {
  policy_name     = "${local.name}-waf-logs"
  policy_document = data.aws_iam_policy_document.waf_logs.json
}

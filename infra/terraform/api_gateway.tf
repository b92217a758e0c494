# The public REST entry: an API Gateway HTTP API whose default route
# proxies every request, over a VPC link in the private subnets and TLS
# (verified against var.alb_server_name), to the private ALB's HTTPS
# listener, which forwards to the hub tasks. Authentication and each
# client's rate limits stay in the hub (docs/API.md, docs/SECURITY.md);
# the stage adds an overall throttle and an access log.
#
# The WebSocket path does not go through here (an HTTP API does not proxy
# upgrades; edge.tf says why and where it goes). WAF cannot be associated
# with an HTTP API stage (AWS WAF protects REST APIs, not HTTP APIs), so
# the REST path's web ACL sits on the private ALB behind it (waf.tf).

resource "aws_apigatewayv2_api" "rest" {
  name          = "${local.name}-rest"
  description   = "NA-X Stream REST routes (docs/API.md), proxied to the private ALB"
  protocol_type = "HTTP"
  # With a custom domain every request goes through it.
  disable_execute_api_endpoint = var.api_domain_name != null
}

# The VPC link's network interfaces may only open HTTPS to the private ALB.
resource "aws_security_group" "vpc_link" {
  name        = "${local.name}-vpc-link"
  description = "${local.name} API Gateway VPC link: HTTPS to the private ALB only"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "vpc_link_to_alb" {
  security_group_id            = aws_security_group.vpc_link.id
  description                  = "HTTPS to the private ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_from_vpc_link" {
  security_group_id            = aws_security_group.alb.id
  description                  = "HTTPS from the API Gateway VPC link"
  referenced_security_group_id = aws_security_group.vpc_link.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_apigatewayv2_vpc_link" "rest" {
  name               = "${local.name}-rest"
  subnet_ids         = local.private_subnet_ids
  security_group_ids = [aws_security_group.vpc_link.id]
}

resource "aws_apigatewayv2_integration" "hub" {
  api_id             = aws_apigatewayv2_api.rest.id
  description        = "The private ALB's HTTPS listener"
  integration_type   = "HTTP_PROXY"
  integration_method = "ANY"
  integration_uri    = aws_lb_listener.https.arn
  connection_type    = "VPC_LINK"
  connection_id      = aws_apigatewayv2_vpc_link.rest.id
  # API Gateway's maximum; the hub answers well within it (its own
  # deadlines are seconds).
  timeout_milliseconds = 30000

  tls_config {
    server_name_to_verify = var.alb_server_name
  }
}

# Every method and path: the hub routes (and answers 404 to what it does
# not know). No API Gateway authorizer: the hub authenticates each route
# itself (bearer tokens, webhook signatures), and the public market-data
# routes take no credentials (docs/API.md).
resource "aws_apigatewayv2_route" "default" {
  #checkov:skip=CKV_AWS_309:Authorization is the hub's, per route (docs/API.md): bearer tokens, webhook signatures, public market data; an API Gateway authorizer would duplicate it.
  api_id    = aws_apigatewayv2_api.rest.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.hub.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.rest.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit    = var.api_throttling_rate_limit
    throttling_burst_limit   = var.api_throttling_burst_limit
    detailed_metrics_enabled = true
  }

  # One JSON line per request; no headers, query strings or bodies
  # (tokens and personal data stay out of the log).
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      sourceIp           = "$context.identity.sourceIp"
      httpMethod         = "$context.httpMethod"
      path               = "$context.path"
      protocol           = "$context.protocol"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationLatency = "$context.integrationLatency"
      integrationStatus  = "$context.integrationStatus"
      integrationError   = "$context.integrationErrorMessage"
    })
  }
}

# --- optional custom domain ---

resource "aws_apigatewayv2_domain_name" "rest" {
  count       = var.api_domain_name == null ? 0 : 1
  domain_name = var.api_domain_name

  domain_name_configuration {
    certificate_arn = coalesce(var.api_certificate_arn, var.edge_certificate_arn)
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "rest" {
  count       = var.api_domain_name == null ? 0 : 1
  api_id      = aws_apigatewayv2_api.rest.id
  domain_name = aws_apigatewayv2_domain_name.rest[0].id
  stage       = aws_apigatewayv2_stage.default.id
}

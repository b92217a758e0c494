# The public WebSocket entry: an internet-facing ALB in the public
# subnets, protected by WAF (waf.tf), forwarding /ws (var.edge_path_patterns)
# to the hub tasks.
#
# Why the WebSocket path is not on API Gateway, like the REST routes
# (api_gateway.tf): the design (docs/ARCHITECTURE.md, docs/PROTOCOL.md)
# has clients speak the hub's own protocol on `GET /ws` upgraded to a
# WebSocket, "TLS is the load balancer's", behind the private ALB. An
# API Gateway HTTP API does not proxy WebSocket upgrades at all, and an
# API Gateway WebSocket API terminates the socket itself: it would turn
# each client frame into a route invocation of a backend, with its own
# $connect/$disconnect, frame size and idle limits, so the hub's protocol
# (subscribe/resume/ping, close codes, per-connection limits, the fan-out
# writing to the socket) would not reach the client. So the socket needs
# a load balancer that passes the upgrade through: this ALB, which does
# (as the private one does), with TLS 1.2/1.3, WAF and the same target
# tasks. It targets the tasks directly (an ALB cannot target another ALB);
# its own target group, because a target group belongs to one load
# balancer.
#
# A browser page opening wss://<edge host>/ws from a page served on the
# API's host is cross-origin: the hub checks Origin (allowed_origins) and
# the page's CSP allows its own origin only. To serve the trading page
# as one origin, set edge_path_patterns = ["/*"] and use the edge host for
# the page (README.md, "Public entry").

resource "aws_security_group" "edge" {
  name        = "${local.name}-edge"
  description = "${local.name} edge ALB: HTTPS (and HTTP for the redirect) from the internet, to the hub tasks only"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "edge_https" {
  security_group_id = aws_security_group.edge.id
  description       = "HTTPS (WebSocket) from anywhere"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "edge_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers a 301 to HTTPS (aws_lb_listener.edge_http_redirect); nothing is forwarded over plain HTTP.
  security_group_id = aws_security_group.edge.id
  description       = "HTTP from anywhere, redirected to HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "edge_to_task" {
  security_group_id            = aws_security_group.edge.id
  description                  = "To the nax-hub tasks"
  referenced_security_group_id = aws_security_group.task.id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_vpc_security_group_ingress_rule" "task_from_edge" {
  security_group_id            = aws_security_group.task.id
  description                  = "WebSocket (and edge_path_patterns) from the edge ALB"
  referenced_security_group_id = aws_security_group.edge.id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_lb" "edge" {
  #checkov:skip=CKV2_AWS_76:Log4j is covered: its web ACL (waf.tf, edge) has AWSManagedRulesKnownBadInputsRuleSet (Log4JRCE rules). The check also demands AWSManagedRulesAnonymousIpList, whose HostingProviderIPList would block API clients running in clouds (trading bots); not wanted here.
  name                       = "${local.name}-edge"
  internal                   = false
  load_balancer_type         = "application"
  subnets                    = local.public_subnet_ids
  security_groups            = [aws_security_group.edge.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  desync_mitigation_mode     = "strictest"
  # Longer than the hub's ping interval (20 s), so an idle WebSocket is
  # never cut by the ALB.
  idle_timeout = 120

  access_logs {
    bucket  = var.alb_access_logs_bucket
    prefix  = "${local.name}-edge"
    enabled = true
  }
}

resource "aws_lb_target_group" "edge" {
  #checkov:skip=CKV_AWS_378:ALB to task inside the private subnets is HTTP (the hub has no TLS listener; docs/PROTOCOL.md "TLS is the load balancer's"); clients reach this group only through the HTTPS listener's rule edge_to_hub. The private ALB's group is the same and passes only because checkov links it to its HTTPS listener's default action.
  name        = "${local.name}-ws"
  vpc_id      = local.vpc_id
  target_type = "ip"
  port        = local.container_port
  protocol    = "HTTP"
  # As the private target group (ecs.tf): the hub drains its sockets
  # (shutdown_drain_ms) after SIGTERM; clients resume on another task.
  deregistration_delay = 30

  health_check {
    path                = "/health"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "edge_https" {
  load_balancer_arn = aws_lb.edge.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.edge_certificate_arn

  # Anything but the forwarded paths: 404 from the ALB itself.
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "not found"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener_rule" "edge_no_metrics" {
  listener_arn = aws_lb_listener.edge_https.arn
  priority     = 1

  condition {
    path_pattern {
      values = ["/metrics"]
    }
  }

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "not found"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener_rule" "edge_to_hub" {
  listener_arn = aws_lb_listener.edge_https.arn
  priority     = 10

  condition {
    path_pattern {
      values = var.edge_path_patterns
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.edge.arn
  }
}

resource "aws_lb_listener" "edge_http_redirect" {
  load_balancer_arn = aws_lb.edge.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

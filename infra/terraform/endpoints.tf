# VPC endpoints of the network created here (network.tf): the tasks reach
# the AWS APIs they call inside the VPC instead of through NAT. Gateway
# endpoints for DynamoDB and S3 (the store, the audit archive, ECR's
# image layers); interface endpoints, with private DNS, for SQS, Secrets
# Manager, ECR (API and registry), CloudWatch Logs (awslogs and the
# collectors' metrics), KMS, EventBridge and X-Ray (the collectors'
# traces). Everything else (the venue, custody, payment providers,
# HubSpot, the collector image on ECR Public) goes out through NAT.
#
# With an existing VPC (var.vpc_id) none of this is created: its owner
# provides endpoints or NAT.

locals {
  gateway_endpoints   = local.create_network ? toset(["dynamodb", "s3"]) : toset([])
  interface_endpoints = local.create_network ? toset(["sqs", "secretsmanager", "ecr.api", "ecr.dkr", "logs", "kms", "events", "xray"]) : toset([])
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = local.gateway_endpoints

  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${local.region}.${each.value}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id

  tags = { Name = "${local.name}-${each.value}" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.value}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true

  tags = { Name = "${local.name}-${each.value}" }
}

# HTTPS from inside the VPC; the endpoints never open connections.
resource "aws_security_group" "endpoints" {
  count = local.create_network ? 1 : 0

  name        = "${local.name}-endpoints"
  description = "${local.name} interface endpoints: HTTPS from the VPC"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  count = local.create_network ? 1 : 0

  security_group_id = aws_security_group.endpoints[0].id
  description       = "HTTPS from the VPC"
  cidr_ipv4         = local.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# The network: a VPC across var.availability_zone_count AZs, each with a
# private subnet (tasks, the private ALB, the API's VPC link, Redis, the
# interface endpoints) and a public subnet (the internet-facing edge ALB
# and a NAT gateway). Private subnets reach the internet only through NAT
# (the upstream venue, custody, payment providers, HubSpot) and the AWS
# APIs through the endpoints of endpoints.tf. Every flow is logged (VPC
# flow logs to CloudWatch), and the default security group allows nothing.
#
# With var.vpc_id an existing network is used instead: nothing in this
# file or endpoints.tf is created, and the subnets come from
# var.private_subnet_ids / var.public_subnet_ids (their NAT, endpoints
# and flow logs are the network owner's).

locals {
  create_network = var.vpc_id == null

  azs = local.create_network ? slice(data.aws_availability_zones.available[0].names, 0, var.availability_zone_count) : []

  vpc_id   = local.create_network ? aws_vpc.main[0].id : var.vpc_id
  vpc_cidr = local.create_network ? aws_vpc.main[0].cidr_block : data.aws_vpc.existing[0].cidr_block

  private_subnet_ids = local.create_network ? aws_subnet.private[*].id : var.private_subnet_ids
  public_subnet_ids  = local.create_network ? aws_subnet.public[*].id : var.public_subnet_ids

  # Known at plan time for a created network (computed from vpc_cidr), so
  # the hub's NAX_TRUSTED_PROXIES (ecs.tf) does not wait for the apply.
  private_subnet_cidrs = local.create_network ? [for i in range(var.availability_zone_count) : cidrsubnet(var.vpc_cidr, 4, i)] : [for id in var.private_subnet_ids : data.aws_subnet.private[id].cidr_block]
  public_subnet_cidrs  = local.create_network ? [for i in range(var.availability_zone_count) : cidrsubnet(var.vpc_cidr, 8, 240 + i)] : [for id in var.public_subnet_ids : data.aws_subnet.public[id].cidr_block]

  nat_gateway_count = local.create_network ? (var.single_nat_gateway ? 1 : var.availability_zone_count) : 0
}

# --- an existing network (var.vpc_id) ---

data "aws_vpc" "existing" {
  count = local.create_network ? 0 : 1
  id    = var.vpc_id
}

data "aws_subnet" "private" {
  for_each = toset(var.private_subnet_ids)
  id       = each.value
}

data "aws_subnet" "public" {
  for_each = toset(var.public_subnet_ids)
  id       = each.value
}

# --- the network created here ---

data "aws_availability_zones" "available" {
  count = local.create_network ? 1 : 0
  state = "available"

  # Regular AZs only (no Local or Wavelength Zones).
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

resource "aws_vpc" "main" {
  count = local.create_network ? 1 : 0

  cidr_block = var.vpc_cidr
  # Private DNS of the interface endpoints (endpoints.tf) needs both.
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }
}

# Nothing uses the default security group; with no rules it admits and
# lets out nothing, so a resource that falls back to it is cut off rather
# than open.
resource "aws_default_security_group" "main" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.main[0].id
}

resource "aws_subnet" "private" {
  count = local.create_network ? var.availability_zone_count : 0

  vpc_id            = aws_vpc.main[0].id
  availability_zone = local.azs[count.index]
  cidr_block        = local.private_subnet_cidrs[count.index]

  tags = { Name = "${local.name}-private-${local.azs[count.index]}" }
}

# Public subnets hold the edge ALB and the NAT gateways only: nothing
# gets a public IP by default.
resource "aws_subnet" "public" {
  count = local.create_network ? var.availability_zone_count : 0

  vpc_id                  = aws_vpc.main[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = local.public_subnet_cidrs[count.index]
  map_public_ip_on_launch = false

  tags = { Name = "${local.name}-public-${local.azs[count.index]}" }
}

resource "aws_internet_gateway" "main" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.main[0].id

  tags = { Name = local.name }
}

resource "aws_route_table" "public" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.main[0].id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main[0].id
  }

  tags = { Name = "${local.name}-public" }
}

resource "aws_route_table_association" "public" {
  count          = local.create_network ? var.availability_zone_count : 0
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

# One NAT gateway per AZ (or one in all, var.single_nat_gateway), so an AZ
# outage does not cut the other AZs' tasks off the venue and providers.
resource "aws_eip" "nat" {
  count  = local.nat_gateway_count
  domain = "vpc"

  tags = { Name = "${local.name}-nat-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.main]
}

resource "aws_nat_gateway" "main" {
  count         = local.nat_gateway_count
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = { Name = "${local.name}-${local.azs[count.index]}" }
}

# One route table per private subnet: the default route to its AZ's NAT
# gateway; DynamoDB and S3 through the gateway endpoints (endpoints.tf).
resource "aws_route_table" "private" {
  count  = local.create_network ? var.availability_zone_count : 0
  vpc_id = aws_vpc.main[0].id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.main[var.single_nat_gateway ? 0 : count.index].id
  }

  tags = { Name = "${local.name}-private-${local.azs[count.index]}" }
}

resource "aws_route_table_association" "private" {
  count          = local.create_network ? var.availability_zone_count : 0
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# --- flow logs: every accepted and rejected flow, to CloudWatch Logs ---

resource "aws_flow_log" "vpc" {
  count = local.create_network ? 1 : 0

  vpc_id               = aws_vpc.main[0].id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
  # One-minute aggregation: a flow shows up within a minute, for incidents.
  max_aggregation_interval = 60
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc-flow-log/*"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count              = local.create_network ? 1 : 0
  name               = "${local.name}-flow-logs"
  description        = "VPC flow logs of ${local.name}: write to their log group"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid = "WriteTheFlowLogGroup"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogGroups",
      "logs:DescribeLogStreams",
    ]
    resources = [
      local.log_group_arns_by_key.flow_logs,
      "${local.log_group_arns_by_key.flow_logs}:log-stream:*",
    ]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count  = local.create_network ? 1 : 0
  name   = "flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs.json
}

//! The served schema and the contract (feeds/src/shift/schema.graphql)
//! define the same types, fields, arguments, default values, union members
//! and enum values, so the two can never drift apart.

use async_graphql::parser::types::{
    InputValueDefinition, ServiceDocument, TypeDefinition, TypeKind, TypeSystemDefinition,
};
use std::collections::BTreeSet;

const CONTRACT: &str = include_str!("../../feeds/src/shift/schema.graphql");

/// Built-in scalars, which a document may or may not spell out.
const BUILT_IN: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// Every named thing a schema defines, as comparable strings: one entry per
/// type (with its kind), field (with its type), argument or input field
/// (with its type and default), union member and enum value.
fn shape(sdl: &str) -> BTreeSet<String> {
    let doc: ServiceDocument = async_graphql::parser::parse_schema(sdl).expect("SDL parses");
    let mut out = BTreeSet::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty: TypeDefinition = ty.node;
        let name = ty.name.node.to_string();
        if BUILT_IN.contains(&name.as_str()) || name.starts_with("__") {
            continue;
        }
        match ty.kind {
            TypeKind::Scalar => {
                out.insert(format!("scalar {name}"));
            }
            TypeKind::Object(obj) => {
                out.insert(format!("type {name}"));
                for iface in obj.implements {
                    out.insert(format!("{name} implements {}", iface.node));
                }
                for field in obj.fields {
                    let field = field.node;
                    let fname = format!("{name}.{}", field.name.node);
                    out.insert(format!("{fname}: {}", field.ty.node));
                    for arg in field.arguments {
                        out.insert(input_value(&fname, &arg.node));
                    }
                }
            }
            TypeKind::Interface(iface) => {
                out.insert(format!("interface {name}"));
                for field in iface.fields {
                    out.insert(format!(
                        "{name}.{}: {}",
                        field.node.name.node, field.node.ty.node
                    ));
                }
            }
            TypeKind::Union(union) => {
                out.insert(format!("union {name}"));
                for member in union.members {
                    out.insert(format!("{name} member {}", member.node));
                }
            }
            TypeKind::Enum(e) => {
                out.insert(format!("enum {name}"));
                for value in e.values {
                    out.insert(format!("{name}.{}", value.node.value.node));
                }
            }
            TypeKind::InputObject(input) => {
                out.insert(format!("input {name}"));
                for field in input.fields {
                    out.insert(input_value(&name, &field.node));
                }
            }
        }
    }
    out
}

fn input_value(owner: &str, value: &InputValueDefinition) -> String {
    let default = value
        .default_value
        .as_ref()
        .map(|d| format!(" = {}", d.node))
        .unwrap_or_default();
    format!("{owner}({}: {}{default})", value.name.node, value.ty.node)
}

#[test]
fn served_schema_matches_the_contract() {
    let served = sandbox_venue::sdl();
    if std::env::var_os("PRINT_SDL").is_some() {
        println!("{served}");
    }
    let contract = shape(CONTRACT);
    let ours = shape(&served);
    let missing: Vec<_> = contract.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&contract).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "schema drift\nmissing from the server: {missing:#?}\nnot in the contract: {extra:#?}\n\nserved SDL:\n{served}"
    );
}

#[test]
fn the_comparison_sees_types_fields_arguments_defaults_and_enum_values() {
    let contract = shape(CONTRACT);
    for expected in [
        "scalar Decimal",
        "type Order",
        "Order.type: OrderType!",
        "Query.orderBook(depth: Int)",
        "CreateOrderInput(timeInForce: TimeInForce! = GTC)",
        "CreateOrderInput(postOnly: Boolean! = false)",
        "OrderStatus.PARTIALLY_FILLED",
        "UserEvent member Fill",
    ] {
        assert!(
            contract.contains(expected),
            "{expected} not in {contract:#?}"
        );
    }
    // A one-word change is seen.
    let changed = CONTRACT.replace("filledQty: Decimal!", "filledQty: Decimal");
    assert_ne!(shape(&changed), contract);
}

/// Root operation types are named as in the contract.
#[test]
fn root_types_are_query_mutation_and_subscription() {
    let served = sandbox_venue::sdl();
    let ours = shape(&served);
    for root in ["type Query", "type Mutation", "type Subscription"] {
        assert!(ours.contains(root), "{root} missing:\n{served}");
    }
}

//! A JSON Schema inferred from an example request: the example's shape (objects with their
//! keys, arrays of the first item's shape, each value's type), with every key the example
//! has marked required and other keys allowed, as the services accept optional fields.

use serde_json::{Map, Value, json};

pub fn infer(example: &Value) -> Value {
    match example {
        Value::Null => json!({"nullable": true}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
        Value::Number(_) => json!({"type": "number"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => match items.first() {
            Some(first) => json!({"type": "array", "items": infer(first)}),
            None => json!({"type": "array"}),
        },
        Value::Object(fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .map(|(key, value)| (key.clone(), infer(value)))
                .collect();
            let mut schema = json!({"type": "object", "properties": properties});
            if !fields.is_empty() {
                schema["required"] = fields.keys().cloned().collect();
            }
            schema
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_shape_of_the_example() {
        let schema = infer(&json!({"port": {"name": "p", "fixed_ips": [{"ip": "x"}],
                                            "mtu": 1500, "up": true, "device": null}}));
        assert_eq!(
            schema,
            json!({"type": "object", "required": ["port"], "properties": {"port": {
                "type": "object",
                "required": ["device", "fixed_ips", "mtu", "name", "up"],
                "properties": {
                    "device": {"nullable": true},
                    "fixed_ips": {"type": "array", "items": {"type": "object",
                        "required": ["ip"], "properties": {"ip": {"type": "string"}}}},
                    "mtu": {"type": "integer"},
                    "name": {"type": "string"},
                    "up": {"type": "boolean"}}}}})
        );
    }
}

//! Typed access to the fields of a JSON request object, with 400s that name the field.
//! OpenStack bodies are loose (extra attributes kept, `null` meaning "unset"), so services
//! take fields one by one and then decide what to do with the rest.

use serde_json::{Map, Value};

use crate::ApiError;

/// The fields of one JSON object from a request body, consumed as they are read.
#[derive(Debug, Default)]
pub struct Fields {
    map: Map<String, Value>,
    what: &'static str,
}

fn invalid(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for field '{field}': {got} is not of type '{expected}'."
    ))
}

impl Fields {
    /// Takes `{"<what>": {...}}` from a body, e.g. `{"project": {...}}`.
    pub fn from_body(body: Value, what: &'static str) -> Result<Self, ApiError> {
        let Value::Object(mut outer) = body else {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            ));
        };
        match outer.remove(what) {
            Some(Value::Object(map)) => Ok(Self { map, what }),
            Some(other) => Err(invalid(what, "object", &other)),
            None => Err(ApiError::bad_request(format!(
                "'{what}' is a required property."
            ))),
        }
    }

    pub fn from_object(value: Value, what: &'static str) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Self { map, what }),
            other => Err(invalid(what, "object", &other)),
        }
    }

    pub fn contains(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// Looks at a field without consuming it.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field)
    }

    /// A string that may be absent or null.
    pub fn opt_string(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(field, "string", &other)),
        }
    }

    /// A required, non-empty string of at most `max` characters.
    pub fn string(&mut self, field: &str, max: usize) -> Result<String, ApiError> {
        let value = self.opt_string(field)?.ok_or_else(|| {
            ApiError::bad_request(format!(
                "'{field}' is a required property of '{}'.",
                self.what
            ))
        })?;
        check_length(field, &value, max)?;
        Ok(value)
    }

    /// An optional string of at most `max` characters (which may be empty).
    pub fn opt_string_max(&mut self, field: &str, max: usize) -> Result<Option<String>, ApiError> {
        let value = self.opt_string(field)?;
        if let Some(v) = &value
            && v.chars().count() > max
        {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field '{field}': it is longer than {max} characters."
            )));
        }
        Ok(value)
    }

    pub fn opt_bool(&mut self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(invalid(field, "boolean", &other)),
        }
    }

    pub fn opt_object(&mut self, field: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(invalid(field, "object", &other)),
        }
    }

    pub fn opt_array(&mut self, field: &str) -> Result<Option<Vec<Value>>, ApiError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(invalid(field, "array", &other)),
        }
    }

    pub fn opt_string_list(
        &mut self,
        field: &str,
        max_each: usize,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let Some(items) = self.opt_array(field)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => check_length(field, &s, max_each).map(|()| s),
                other => Err(invalid(field, "string", &other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Takes a field as raw JSON, for fields that may have several shapes.
    pub fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    /// Drops a field the service accepts but ignores.
    pub fn ignore(&mut self, field: &str) {
        self.map.remove(field);
    }

    /// Refuses any field not consumed so far.
    pub fn deny_unknown(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{key}' was unexpected) in '{}'.",
                self.what
            ))),
        }
    }

    /// The fields not consumed so far, which the service keeps as extra attributes.
    pub fn into_rest(self) -> Map<String, Value> {
        self.map
    }
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field '{field}': it must not be empty."
        )));
    }
    if value.chars().count() > max {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field '{field}': it is longer than {max} characters."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_field_on_a_type_error() {
        let mut f = Fields::from_body(json!({"project": {"name": 5}}), "project").unwrap();
        let e = f.string("name", 64).unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("'name'"), "{}", e.message);
    }

    #[test]
    fn keeps_what_was_not_read() {
        let mut f =
            Fields::from_body(json!({"user": {"name": "a", "email": "a@b"}}), "user").unwrap();
        assert_eq!(f.string("name", 64).unwrap(), "a");
        assert_eq!(f.into_rest().get("email"), Some(&json!("a@b")));
    }

    #[test]
    fn refuses_unknown_fields_when_asked() {
        let f = Fields::from_body(json!({"x": {"bogus": 1}}), "x").unwrap();
        assert!(f.deny_unknown().is_err());
    }

    #[test]
    fn missing_wrapper_is_a_400() {
        assert!(Fields::from_body(json!({"nope": {}}), "project").is_err());
        assert!(Fields::from_body(json!([1]), "project").is_err());
    }
}

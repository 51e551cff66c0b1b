//! Reading a typed body from its JSON document with objects as the only form of a struct.
//! serde also reads a struct from an array of its fields' values (`[2]` for
//! `{"quantity": 2}`), at any depth; to the API's clients that is a wrong type (docs/api.md: 400).

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Error, Value};

/// `document` as a `T`, refusing arrays where `T` (or anything in it) has a struct.
pub fn from_value<T: DeserializeOwned>(document: Value) -> Result<T, Error> {
    T::deserialize(Document(document))
}

struct Document(Value);

impl<'de> Deserializer<'de> for Document {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => {
                let len = items.len();
                let mut items = Items(items.into_iter());
                let read = visitor.visit_seq(&mut items)?;
                // As serde_json: elements the type has no place for are an error.
                match items.0.len() {
                    0 => Ok(read),
                    _ => Err(de::Error::invalid_length(len, &"fewer elements in array")),
                }
            }
            Value::Object(members) => {
                let len = members.len();
                let mut members = Members { members: members.into_iter(), value: None };
                let read = visitor.visit_map(&mut members)?;
                match members.members.len() {
                    0 => Ok(read),
                    _ => Err(de::Error::invalid_length(len, &"fewer elements in map")),
                }
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            Value::Object(members) => Document(Value::Object(members)).deserialize_any(visitor),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    // Bodies' enums are plain names (`"customer"`): no struct inside to check.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, Error> {
        self.0.next().map(|item| seed.deserialize(Document(item))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Members {
    members: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for Members {
    type Error = Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, Error> {
        let Some((name, value)) = self.members.next() else { return Ok(None) };
        self.value = Some(value);
        seed.deserialize(StringDeserializer::<Error>::new(name)).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let value = self.value.take().ok_or_else(|| de::Error::custom("a value before its key"))?;
        seed.deserialize(Document(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Line {
        product_id: String,
        quantity: u32,
        #[serde(default)]
        note: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Lines {
        items: Vec<Line>,
        pair: Option<(u8, String)>,
    }

    #[test]
    fn objects_are_read_as_serde_json_reads_them() {
        let read: Lines =
            from_value(json!({"items": [{"product_id": "a", "quantity": 2, "extra": [1]}], "pair": [1, "x"]})).unwrap();
        assert_eq!(read.items, [Line { product_id: "a".into(), quantity: 2, note: None }]);
        assert_eq!(read.pair, Some((1, "x".into())));
        assert!(from_value::<Lines>(json!({"items": [], "pair": null})).unwrap().pair.is_none());
        for wrong in [
            json!({"items": [{"product_id": "a", "quantity": -1}]}),
            json!({"items": [{"product_id": "a", "quantity": 1, "note": 5}]}),
            json!({"items": [], "pair": [1, "x", 3]}),
            json!({"items": {}}),
        ] {
            assert!(from_value::<Lines>(wrong.clone()).is_err(), "{wrong}");
            assert!(serde_json::from_value::<Lines>(wrong.clone()).is_err(), "{wrong}: as serde_json");
        }
    }

    #[test]
    fn arrays_are_not_structs_at_any_depth() {
        assert!(serde_json::from_value::<Line>(json!(["a", 2])).is_ok(), "what serde_json alone takes");
        let error = from_value::<Line>(json!(["a", 2])).unwrap_err();
        assert_eq!(error.to_string(), "invalid type: sequence, expected struct Line");
        assert!(from_value::<Lines>(json!({"items": [["a", 2]]})).is_err());
        assert!(from_value::<Lines>(json!([[{"product_id": "a", "quantity": 2}], null])).is_err());
    }
}

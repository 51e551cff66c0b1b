//! template.yaml as data: YAML short-form intrinsics (`!Ref`, `!GetAtt`, `!Sub`, ...) are
//! turned into their long JSON form, then resolved against parameters, pseudo parameters and
//! the physical ids of resources already provisioned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: Map<String, Value>,
    /// SAM `Globals` (e.g. `Function`), merged into each resource by its reader.
    pub globals: Map<String, Value>,
    pub resources: BTreeMap<String, Resource>,
    pub outputs: Map<String, Value>,
    /// `Conditions`: name -> condition function (`Fn::Equals`, `Fn::Not`, ...).
    pub conditions: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    /// The resource's `Condition`: it exists only where that condition holds.
    pub condition: Option<String>,
    pub properties: Value,
    /// `Metadata` (e.g. SAM's `BuildProperties`), unresolved.
    pub metadata: Value,
    pub depends_on: Vec<String>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let yaml: serde_norway::Value = serde_norway::from_str(text)?;
        let Value::Object(mut root) = to_json(yaml)? else {
            bail!("the template is not a mapping");
        };
        let mut take = |key: &str| match root.remove(key) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let (parameters, globals) = (take("Parameters"), take("Globals"));
        let (raw_resources, outputs, conditions) = (take("Resources"), take("Outputs"), take("Conditions"));
        let mut resources = BTreeMap::new();
        for (id, body) in raw_resources {
            let kind = body["Type"].as_str().ok_or_else(|| anyhow!("resource {id} has no Type"))?.to_owned();
            let depends_on = match &body["DependsOn"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(list) => list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                _ => Vec::new(),
            };
            let properties = body.get("Properties").cloned().unwrap_or(Value::Object(Map::new()));
            resources.insert(
                id,
                Resource {
                    kind,
                    condition: body["Condition"].as_str().map(str::to_owned),
                    properties,
                    metadata: body.get("Metadata").cloned().unwrap_or(Value::Null),
                    depends_on,
                },
            );
        }
        Ok(Self { parameters, globals, resources, outputs, conditions })
    }

    /// Logical ids of the resources `value` refers to (Ref, GetAtt, and `${...}` in Sub).
    pub fn references(&self, value: &Value) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        self.collect_references(value, &mut found);
        found
    }

    fn collect_references(&self, value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::Array(items) => items.iter().for_each(|v| self.collect_references(v, found)),
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("Ref") {
                    found.insert(target.clone());
                }
                if let Some(Value::Array(parts)) = map.get("Fn::GetAtt")
                    && let Some(Value::String(target)) = parts.first()
                {
                    found.insert(target.clone());
                }
                let sub_text = match map.get("Fn::Sub") {
                    Some(Value::String(text)) => Some(text.as_str()),
                    Some(Value::Array(parts)) => parts.first().and_then(Value::as_str),
                    _ => None,
                };
                if let Some(text) = sub_text {
                    for placeholder in sub_placeholders(text) {
                        found.insert(placeholder.split('.').next().unwrap_or_default().to_owned());
                    }
                }
                map.values().for_each(|v| self.collect_references(v, found));
            }
            _ => {}
        }
        found.retain(|id| self.resources.contains_key(id));
    }
}

/// YAML -> JSON, expanding the short-form intrinsic tags.
fn to_json(yaml: serde_norway::Value) -> Result<Value> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)?.trim().to_owned(),
                };
                out.insert(key, to_json(value)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let name = name.trim_start_matches('!');
            let inner = to_json(tagged.value)?;
            let (key, inner) = match (name, inner) {
                ("Ref", inner) => ("Ref".to_owned(), inner),
                ("Condition", inner) => ("Condition".to_owned(), inner),
                ("GetAtt", Value::String(s)) => {
                    let (id, attr) =
                        s.split_once('.').ok_or_else(|| anyhow!("!GetAtt {s}: expected Resource.Attribute"))?;
                    ("Fn::GetAtt".to_owned(), Value::Array(vec![id.into(), attr.into()]))
                }
                (other, inner) => (format!("Fn::{other}"), inner),
            };
            Value::Object(Map::from_iter([(key, inner)]))
        }
    })
}

/// The `${...}` placeholders of a Fn::Sub string, without `${!literal}` escapes.
pub fn sub_placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            found.push(name);
        }
        rest = &after[end + 1..];
    }
    found
}

/// What a resource resolves to once it exists: its `Ref` value and its `GetAtt` attributes.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Physical {
    #[serde(rename = "Ref")]
    pub reference: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// Resolves intrinsics in a value. Resources must already be in `resources`.
pub struct Resolver<'a> {
    pub parameters: &'a HashMap<String, String>,
    pub resources: &'a BTreeMap<String, Physical>,
}

/// Marker for `AWS::NoValue`: the property is dropped.
const NO_VALUE: &str = "\u{0}AWS::NoValue";

impl Resolver<'_> {
    /// Whether the template's condition `name` holds (`Fn::Equals`, `Fn::Not`, `Fn::And`,
    /// `Fn::Or` and `Condition` references, over parameters and pseudo parameters).
    pub fn condition(&self, conditions: &Map<String, Value>, name: &str) -> Result<bool> {
        let body = conditions.get(name).ok_or_else(|| anyhow!("no condition {name}"))?;
        self.evaluate(conditions, body).with_context(|| format!("condition {name}"))
    }

    fn evaluate(&self, conditions: &Map<String, Value>, body: &Value) -> Result<bool> {
        let (function, arg) = body
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next())
            .ok_or_else(|| anyhow!("a condition is one condition function"))?;
        let each = |arg: &Value| -> Result<Vec<bool>> {
            let list = arg.as_array().ok_or_else(|| anyhow!("{function} takes a list"))?;
            list.iter().map(|c| self.evaluate(conditions, c)).collect()
        };
        match function.as_str() {
            "Fn::Equals" => {
                let pair = arg.as_array().filter(|p| p.len() == 2).ok_or_else(|| anyhow!("Equals takes two values"))?;
                Ok(scalar_string(&self.resolve(&pair[0])?) == scalar_string(&self.resolve(&pair[1])?))
            }
            "Fn::Not" => Ok(!each(arg)?.first().copied().ok_or_else(|| anyhow!("Not takes one condition"))?),
            "Fn::And" => Ok(each(arg)?.into_iter().all(|c| c)),
            "Fn::Or" => Ok(each(arg)?.into_iter().any(|c| c)),
            "Condition" => self.condition(conditions, arg.as_str().ok_or_else(|| anyhow!("Condition takes a name"))?),
            other => bail!("condition function {other} is not supported by devstack"),
        }
    }

    pub fn resolve(&self, value: &Value) -> Result<Value> {
        let resolved = self.resolve_inner(value)?;
        Ok(strip_no_value(resolved).unwrap_or(Value::Null))
    }

    fn resolve_inner(&self, value: &Value) -> Result<Value> {
        match value {
            Value::Array(items) => {
                Ok(Value::Array(items.iter().map(|v| self.resolve_inner(v)).collect::<Result<_>>()?))
            }
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => {
                        self.reference(arg.as_str().ok_or_else(|| anyhow!("Ref takes a name"))?).map(Value::String)
                    }
                    "Fn::GetAtt" => {
                        let parts = arg
                            .as_array()
                            .filter(|p| p.len() == 2)
                            .ok_or_else(|| anyhow!("GetAtt takes [Resource, Attribute]"))?;
                        let (id, attr) = (parts[0].as_str().unwrap_or_default(), parts[1].as_str().unwrap_or_default());
                        self.attribute(id, attr).map(Value::String)
                    }
                    "Fn::Sub" => self.sub(arg).map(Value::String),
                    "Fn::Join" => {
                        let parts = arg
                            .as_array()
                            .filter(|p| p.len() == 2)
                            .ok_or_else(|| anyhow!("Join takes [delimiter, list]"))?;
                        let delimiter = parts[0].as_str().unwrap_or_default();
                        let list = self.resolve_inner(&parts[1])?;
                        let items: Vec<String> = list
                            .as_array()
                            .ok_or_else(|| anyhow!("Join needs a list"))?
                            .iter()
                            .map(scalar_string)
                            .collect();
                        Ok(Value::String(items.join(delimiter)))
                    }
                    "Fn::Select" => {
                        let parts = arg
                            .as_array()
                            .filter(|p| p.len() == 2)
                            .ok_or_else(|| anyhow!("Select takes [index, list]"))?;
                        let index: usize = scalar_string(&self.resolve_inner(&parts[0])?).parse()?;
                        let list = self.resolve_inner(&parts[1])?;
                        list.get(index).cloned().ok_or_else(|| anyhow!("Select index {index} out of range"))
                    }
                    key if key.starts_with("Fn::") => {
                        bail!("intrinsic {key} is not supported by devstack")
                    }
                    _ => Ok(Value::Object(Map::from_iter([(key.clone(), self.resolve_inner(arg)?)]))),
                }
            }
            Value::Object(map) => Ok(Value::Object(
                map.iter().map(|(k, v)| Ok((k.clone(), self.resolve_inner(v)?))).collect::<Result<_>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    fn reference(&self, name: &str) -> Result<String> {
        if name == "AWS::NoValue" {
            return Ok(NO_VALUE.into());
        }
        if let Some(value) = self.parameters.get(name) {
            return Ok(value.clone());
        }
        if let Some(physical) = self.resources.get(name) {
            return Ok(physical.reference.clone());
        }
        bail!("Ref {name}: no such parameter, or the resource is not provisioned")
    }

    fn attribute(&self, id: &str, attr: &str) -> Result<String> {
        let physical = self.resources.get(id).ok_or_else(|| anyhow!("GetAtt {id}.{attr}: resource not provisioned"))?;
        physical.attributes.get(attr).cloned().ok_or_else(|| anyhow!("GetAtt {id}.{attr}: unknown attribute"))
    }

    fn sub(&self, arg: &Value) -> Result<String> {
        let (text, variables) = match arg {
            Value::String(text) => (text.as_str(), Map::new()),
            Value::Array(parts) if parts.len() == 2 => (
                parts[0].as_str().ok_or_else(|| anyhow!("Sub takes a string"))?,
                parts[1].as_object().cloned().unwrap_or_default(),
            ),
            _ => bail!("Sub takes a string or [string, variables]"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| anyhow!("Sub: unclosed ${{ in {text:?}"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.get(name) {
                out.push_str(&scalar_string(&self.resolve_inner(value)?));
            } else if let Some((id, attr)) = name.split_once('.').filter(|(id, _)| !id.starts_with("AWS::")) {
                out.push_str(&self.attribute(id, attr)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn strip_no_value(value: Value) -> Option<Value> {
    match value {
        Value::String(s) if s == NO_VALUE => None,
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(strip_no_value).collect())),
        Value::Object(map) => {
            Some(Value::Object(map.into_iter().filter_map(|(k, v)| Some((k, strip_no_value(v)?))).collect()))
        }
        other => Some(other),
    }
}

/// A scalar as the string the AWS APIs take (`true`, `5`, `text`); JSON for the rest.
pub fn scalar_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Count: { Type: Number, Default: 5 }
Resources:
  Dlq:
    Type: AWS::SQS::Queue
    Properties: { QueueName: !Sub "${AWS::StackName}-dlq" }
  Queue:
    Type: AWS::SQS::Queue
    DependsOn: Other
    Properties:
      QueueName: !Join ["-", [!Ref AWS::StackName, q]]
      Nothing: !Ref AWS::NoValue
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: !Ref Count
      Literal: !Sub "${!NotResolved}/${Dlq.QueueName}/${Name}"
      Picked: !Select [1, [a, b]]
  Other:
    Type: AWS::SNS::Topic
"#;

    fn resolver_parts() -> (HashMap<String, String>, BTreeMap<String, Physical>) {
        let parameters = HashMap::from([("AWS::StackName".into(), "st".into()), ("Count".into(), "5".into())]);
        let dlq = Physical {
            reference: "http://q/st-dlq".into(),
            attributes: BTreeMap::from([
                ("Arn".into(), "arn:aws:sqs:r:1:st-dlq".into()),
                ("QueueName".into(), "st-dlq".into()),
            ]),
        };
        (parameters, BTreeMap::from([("Dlq".into(), dlq)]))
    }

    #[test]
    fn short_forms_become_long_forms_and_references_are_found() {
        let template = Template::parse(TEMPLATE).unwrap();
        let queue = &template.resources["Queue"];
        assert_eq!(queue.depends_on, ["Other"]);
        assert_eq!(
            queue.properties["RedrivePolicy"]["deadLetterTargetArn"],
            serde_json::json!({"Fn::GetAtt": ["Dlq", "Arn"]})
        );
        assert_eq!(template.references(&queue.properties), BTreeSet::from(["Dlq".to_owned()]));
    }

    #[test]
    fn conditions_evaluate_over_parameters() {
        let template = Template::parse(
            "Parameters: {Email: {Type: String}}\nConditions:\n  HasEmail: !Not [!Equals [!Ref Email, '']]\n  \
             Both: !And [!Condition HasEmail, !Equals [!Ref 'AWS::Region', us-east-1]]\n  \
             Either: !Or [!Condition HasEmail, !Equals [a, a]]\n  Odd: !If [x, y, z]\n\
             Resources: {S: {Type: AWS::SNS::Subscription, Condition: HasEmail}}",
        )
        .unwrap();
        assert_eq!(template.resources["S"].condition.as_deref(), Some("HasEmail"));
        let resources = BTreeMap::new();
        let check = |email: &str, name: &str| {
            let parameters = HashMap::from([
                ("Email".to_owned(), email.to_owned()),
                ("AWS::Region".to_owned(), "us-east-1".to_owned()),
            ]);
            Resolver { parameters: &parameters, resources: &resources }.condition(&template.conditions, name)
        };
        assert!(!check("", "HasEmail").unwrap());
        assert!(check("ops@example.com", "HasEmail").unwrap());
        assert!(check("ops@example.com", "Both").unwrap());
        assert!(!check("", "Both").unwrap());
        assert!(check("", "Either").unwrap());
        assert!(check("", "Odd").is_err());
        assert!(check("", "Missing").is_err());
    }

    #[test]
    fn intrinsics_resolve() {
        let template = Template::parse(TEMPLATE).unwrap();
        let (parameters, resources) = resolver_parts();
        let resolver = Resolver { parameters: &parameters, resources: &resources };
        let mut with_name = template.resources["Queue"].properties.clone();
        with_name["Literal"] =
            serde_json::json!({"Fn::Sub": [with_name["Literal"]["Fn::Sub"], {"Name": {"Ref": "Count"}}]});
        let props = resolver.resolve(&with_name).unwrap();
        assert_eq!(props["QueueName"], "st-q");
        assert!(props.get("Nothing").is_none());
        assert_eq!(props["RedrivePolicy"]["deadLetterTargetArn"], "arn:aws:sqs:r:1:st-dlq");
        assert_eq!(props["RedrivePolicy"]["maxReceiveCount"], "5");
        assert_eq!(props["Literal"], "${NotResolved}/st-dlq/5");
        assert_eq!(props["Picked"], "b");
        let dlq = resolver.resolve(&template.resources["Dlq"].properties).unwrap();
        assert_eq!(dlq["QueueName"], "st-dlq");
    }

    #[test]
    fn unknown_references_are_errors_not_blanks() {
        let (parameters, resources) = resolver_parts();
        let resolver = Resolver { parameters: &parameters, resources: &resources };
        for bad in [
            serde_json::json!({"Ref": "Missing"}),
            serde_json::json!({"Fn::GetAtt": ["Dlq", "Nope"]}),
            serde_json::json!({"Fn::Sub": "${Missing.Arn}"}),
            serde_json::json!({"Fn::If": ["C", 1, 2]}),
        ] {
            assert!(resolver.resolve(&bad).is_err(), "{bad}");
        }
    }
}

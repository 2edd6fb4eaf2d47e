//! Turns whatever invoked a function into one typed request: the task's own request JSON
//! (a schedule, a console user, a Step Functions task with an `action` field) or a
//! CloudWatch "Alarm State Change" event. Anything else is rejected with `InvalidInput`
//! before any database or AWS call.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

pub const ALARM_SOURCE: &str = "aws.cloudwatch";
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// What arrived, before the task interprets it.
#[derive(Debug)]
pub enum Incoming {
    /// The task's own request, or Step Functions task input.
    Request(Value),
    Alarm(AlarmEvent),
}

/// The parts of a CloudWatch alarm state-change event a task acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEvent {
    pub alarm_name: String,
    pub state: String,
    pub metrics: Vec<AlarmMetric>,
}

impl AlarmEvent {
    /// Tasks act only when an alarm goes into ALARM.
    pub fn require_alarm_state(&self, task: &str) -> Result<()> {
        if self.state == "ALARM" {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "alarm '{}' is in state {}; {task} acts only on ALARM (route only ALARM states to it)",
            self.alarm_name, self.state
        )))
    }

    /// The alarm's database dimension must name the database this function serves.
    pub fn require_database(&self, dimension: Option<&String>, db: &str, task: &str) -> Result<()> {
        if dimension.map(String::as_str) == Some(db) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "alarm '{}' is for database {:?}, but this {task} function serves '{db}'; route the alarm to that database's function",
            self.alarm_name,
            dimension.map(String::as_str).unwrap_or("(none)")
        )))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmMetric {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

/// Sorts an event into request or alarm. `task` names the function in messages.
pub fn classify(event: Value, task: &str) -> Result<Incoming> {
    let Value::Object(map) = &event else {
        return Err(Error::invalid(format!(
            "{task} expects a JSON object, got {}; see events/{task}/ for examples",
            kind(&event)
        )));
    };
    let detail_type = map.get("detail-type").and_then(Value::as_str);
    let source = map.get("source").and_then(Value::as_str);
    match (source, detail_type) {
        (Some(ALARM_SOURCE), Some(ALARM_DETAIL_TYPE)) => parse_alarm(map.get("detail"), task).map(Incoming::Alarm),
        (Some(s), Some(d)) => Err(Error::invalid(format!(
            "{task} does not handle '{d}' events from '{s}'; it takes its own request or a CloudWatch alarm state change (see events/{task}/)"
        ))),
        _ => Ok(Incoming::Request(event)),
    }
}

/// An RDS event delivered by EventBridge (`source: aws.rds`), e.g. "RDS DB Snapshot Event".
#[derive(Debug, Clone, PartialEq)]
pub struct RdsEvent {
    pub detail_type: String,
    pub event_id: String,
    pub source_identifier: String,
    pub source_arn: String,
    /// The Region RDS emitted it in (the envelope's `region`); events forwarded from another
    /// Region's bus keep theirs. Empty when absent.
    pub region: String,
}

/// Recognises an RDS event; tasks that react to one check it before `classify`.
pub fn rds_event(event: &Value) -> Option<RdsEvent> {
    if event.get("source")?.as_str()? != "aws.rds" {
        return None;
    }
    let detail = event.get("detail")?;
    let text = |k: &str| {
        detail
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(RdsEvent {
        detail_type: event.get("detail-type")?.as_str()?.to_string(),
        event_id: text("EventID"),
        source_identifier: text("SourceIdentifier"),
        source_arn: text("SourceArn"),
        region: event
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

/// Deserializes the task's own request, naming the bad field or value.
pub fn parse_request<T: DeserializeOwned>(value: Value, task: &str) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        Error::invalid(format!(
            "{task} request: {e}; see events/{task}/ for valid requests"
        ))
    })
}

#[derive(Deserialize)]
struct RawAlarmDetail {
    #[serde(rename = "alarmName")]
    alarm_name: String,
    state: RawState,
    #[serde(default)]
    configuration: RawConfiguration,
}

#[derive(Deserialize)]
struct RawState {
    value: String,
}

#[derive(Deserialize, Default)]
struct RawConfiguration {
    #[serde(default)]
    metrics: Vec<RawMetric>,
}

#[derive(Deserialize)]
struct RawMetric {
    #[serde(rename = "metricStat")]
    metric_stat: Option<RawMetricStat>,
}

#[derive(Deserialize)]
struct RawMetricStat {
    metric: RawMetricId,
}

#[derive(Deserialize)]
struct RawMetricId {
    namespace: String,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

fn parse_alarm(detail: Option<&Value>, task: &str) -> Result<AlarmEvent> {
    let detail =
        detail.ok_or_else(|| Error::invalid(format!("{task}: alarm event has no 'detail'")))?;
    let raw: RawAlarmDetail = serde_json::from_value(detail.clone())
        .map_err(|e| Error::invalid(format!("{task}: alarm event detail is malformed: {e}")))?;
    Ok(AlarmEvent {
        alarm_name: raw.alarm_name,
        state: raw.state.value,
        metrics: raw
            .configuration
            .metrics
            .into_iter()
            .filter_map(|m| m.metric_stat)
            .map(|s| AlarmMetric {
                namespace: s.metric.namespace,
                name: s.metric.name,
                dimensions: s.metric.dimensions,
            })
            .collect(),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejects_non_objects_and_foreign_events() {
        let e = classify(json!([1]), "health-check").unwrap_err();
        assert_eq!(e.error_type(), "InvalidInput");
        assert!(e.to_string().contains("an array"));
        let e = classify(
            json!({"source":"aws.rds","detail-type":"RDS DB Instance Event","detail":{}}),
            "health-check",
        )
        .unwrap_err();
        assert!(e.to_string().contains("'RDS DB Instance Event'"), "{e}");
    }

    #[test]
    fn reads_alarm_metrics() {
        let ev = json!({"source":"aws.cloudwatch","detail-type":"CloudWatch Alarm State Change","detail":{
            "alarmName":"a","state":{"value":"ALARM"},
            "configuration":{"metrics":[{"id":"m1","metricStat":{"metric":{"namespace":"pgsteward","name":"X","dimensions":{"Database":"db"}},"period":300,"stat":"Maximum"},"returnData":true}]}}});
        let Incoming::Alarm(a) = classify(ev, "t").unwrap() else {
            panic!()
        };
        assert_eq!(a.metrics[0].dimensions["Database"], "db");
    }
}

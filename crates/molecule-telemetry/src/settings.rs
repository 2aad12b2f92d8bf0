//! The standard `OTEL_*` variables this exporter reads
//! (<https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>,
//! <https://opentelemetry.io/docs/specs/otel/protocol/exporter/>).
//!
//! Traces are exported only when an endpoint is set
//! (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as it is, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`) and neither
//! `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise.
//! The protocol is OTLP/HTTP with JSON bodies: a protocol variable naming
//! another (`grpc`, `http/protobuf`) is refused at start rather than
//! silently ignored.

use std::time::Duration;

/// Every variable read here.
pub const ENV_NAMES: [&str; 12] = [
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
];

/// Where and how spans are exported.
#[derive(Clone, PartialEq)]
pub struct Settings {
    /// The full URL spans are POSTed to.
    pub endpoint: String,
    /// Extra request headers (often an API key: never shown by `Debug`).
    pub headers: Vec<(String, String)>,
    pub service_name: String,
    pub resource: Vec<(String, String)>,
    pub schedule_delay: Duration,
    pub max_batch: usize,
    pub max_queue: usize,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint)
            .field("headers", &header_names)
            .field("service_name", &self.service_name)
            .field("resource", &self.resource)
            .field("schedule_delay", &self.schedule_delay)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

/// `k=v,k2=v2`, values percent-decoded.
fn pairs(list: &str) -> Result<Vec<(String, String)>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("{p:?} is not key=value"))?;
            Ok((k.trim().to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Settings {
    /// The settings the variables give (looked up by `env`; empty counts as
    /// unset), `None` when traces are not to be exported, an error naming
    /// the variable for a value that cannot be used.
    pub fn from_env(
        default_service: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>, String> {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match get("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_EXPORTER={other:?}: only `otlp` (or `none`) is supported"
                ));
            }
        }
        let endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(e), _) => e,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(format!(
                "the OTLP endpoint {endpoint:?} must be an http:// or https:// URL"
            ));
        }
        for var in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(p) = get(var)
                && p != "http/json"
            {
                return Err(format!(
                    "{var}={p:?}: this exporter speaks OTLP/HTTP with JSON bodies (`http/json`)"
                ));
            }
        }
        let mut headers = Vec::new();
        for var in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(list) = get(var) {
                headers.extend(pairs(&list).map_err(|e| format!("{var}: {e}"))?);
            }
        }
        let resource = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(list) => pairs(&list).map_err(|e| format!("OTEL_RESOURCE_ATTRIBUTES: {e}"))?,
            None => Vec::new(),
        };
        let service_name = get("OTEL_SERVICE_NAME")
            .or_else(|| {
                resource
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| default_service.to_string());
        let number = |var: &str, default: u64| -> Result<u64, String> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{var}={v:?} must be a positive integer")),
            }
        };
        let schedule_delay = Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 5000)?);
        let max_batch = usize::try_from(number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?)
            .map_err(|e| e.to_string())?;
        Ok(Some(Settings {
            endpoint,
            headers,
            service_name,
            resource,
            schedule_delay,
            max_batch,
            max_queue: 2048,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Option<Settings>, String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env("svc", |k| m.get(k).cloned())
    }

    #[test]
    fn nothing_is_exported_unless_an_endpoint_is_set() {
        assert_eq!(load(&[]), Ok(None));
        assert_eq!(
            load(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ]),
            Ok(None)
        );
        assert_eq!(
            load(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none")
            ]),
            Ok(None)
        );
    }

    #[test]
    fn the_standard_variables_are_read() {
        let s = load(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, x=1"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, "http://c:4318/v1/traces");
        assert_eq!(s.headers[0], ("api-key".into(), "s=cret".into()));
        assert_eq!(s.service_name, "svc");
        assert_eq!(s.schedule_delay, Duration::from_millis(100));
        assert!(
            !format!("{s:?}").contains("s=cret"),
            "header values are secret"
        );
        let s = load(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c/custom"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored"),
            ("OTEL_SERVICE_NAME", "mine"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.service_name.as_str()),
            ("https://c/custom", "mine")
        );
    }

    #[test]
    fn unusable_values_are_refused_by_name() {
        for (vars, name) in [
            (vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")], "endpoint"),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
                ],
                "OTEL_BSP_SCHEDULE_DELAY",
            ),
        ] {
            let err = load(&vars).unwrap_err();
            assert!(err.contains(name), "{vars:?}: {err}");
        }
    }
}

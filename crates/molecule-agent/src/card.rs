//! The agent card (A2A v0.3 `AgentCard`) this agent serves at
//! `/.well-known/agent-card.json` (and the pre-0.3 `agent.json`) and sends at
//! registration. The platform reads only `url`; other A2A clients read the
//! rest. No v1.0 `supportedInterfaces` and no signatures.

use serde_json::{Value, json};

use crate::config::AgentConfig;

/// The card for an agent reachable at `url`.
pub fn agent_card(config: &AgentConfig, url: &str) -> Value {
    json!({
        "name": config.name,
        "description": config.description,
        "url": url,
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
        "capabilities": {
            "streaming": true,
            "pushNotifications": false,
            "stateTransitionHistory": false,
        },
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": config.skills,
    })
}

//! Adversarial tests: outbound.

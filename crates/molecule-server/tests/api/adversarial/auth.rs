//! Adversarial tests: auth.

//! Adversarial tests: activity.

//! Adversarial tests: edge.

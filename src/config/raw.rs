//! The config file as written (placeholder: being written).

//! Loading (placeholder: being written).

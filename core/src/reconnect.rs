//! Reconnect policy: exponential backoff with full jitter, as pure data.

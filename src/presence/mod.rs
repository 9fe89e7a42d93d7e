//! Presence: a Phoenix.Tracker-style delta-state CRDT (see `presence::state`).

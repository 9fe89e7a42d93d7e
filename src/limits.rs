//! Every bound in kith, named in one place.
//!
//! Frames, queues, tables, retries and backoff all take their limits from here, so that a
//! reviewer can see at a glance what the node will hold on to, and so that related limits can be
//! checked against each other at compile time.

//! The supervision engine: OTP strategies, restart intensity and restart types over ractor.

//! kith-supervisors: the supervision trees of kith, read the way an OTP application reads.

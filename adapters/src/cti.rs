//! cti channel (being written).

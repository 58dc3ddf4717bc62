//! weibo channel (being written).

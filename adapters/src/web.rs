//! Web form channel (being written).

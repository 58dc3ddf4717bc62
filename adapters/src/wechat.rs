//! wechat channel (being written).

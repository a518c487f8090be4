//! protocol-sim: work in progress (see issue 5).

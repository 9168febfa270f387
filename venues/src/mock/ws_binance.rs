//! Placeholder: filled in by the WebSocket order-entry and private-stream work.

use super::http::Request;
use super::server::{Ctx, ServerIo};

pub(crate) fn handles(_path: &str) -> bool {
    false
}

pub(crate) fn websocket(_io: ServerIo, _req: Request, _ctx: &Ctx, _n: u64) -> std::io::Result<()> {
    Ok(())
}

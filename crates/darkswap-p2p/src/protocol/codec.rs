//! Request-response codecs for the direct protocols (sync, trade).
//!
//! One request or response per stream: `version byte || postcard(value)`, written whole and read
//! up to a per-direction cap. Anything larger, of another version, or undecodable fails the stream
//! with `InvalidData` and never reaches the node's logic.

use super::WIRE_VERSION;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};
use serde::{de::DeserializeOwned, Serialize};
use std::{fmt, io, marker::PhantomData};

/// Why a direct-protocol frame was refused (carried inside an `io::Error` of kind `InvalidData`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The frame exceeds the cap for its direction.
    #[error("frame larger than {0} bytes")]
    Oversized(usize),
    /// The frame is empty.
    #[error("empty frame")]
    Empty,
    /// The version byte is not [`WIRE_VERSION`].
    #[error("unknown wire version {0}")]
    UnknownVersion(u8),
    /// The body does not decode as the schema says.
    #[error("undecodable body: {0}")]
    Undecodable(String),
}

/// Encodes `value` as `version || postcard(value)`.
pub fn encode_frame<T: Serialize>(value: &T, max: usize) -> io::Result<Vec<u8>> {
    let out =
        postcard::to_extend(value, vec![WIRE_VERSION]).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if out.len() > max {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, FrameError::Oversized(max)));
    }
    Ok(out)
}

/// Decodes a frame produced by [`encode_frame`].
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, FrameError> {
    if bytes.len() > max {
        return Err(FrameError::Oversized(max));
    }
    match bytes.split_first() {
        None => Err(FrameError::Empty),
        Some((&WIRE_VERSION, body)) => postcard::from_bytes(body).map_err(|e| FrameError::Undecodable(e.to_string())),
        Some((&v, _)) => Err(FrameError::UnknownVersion(v)),
    }
}

/// Decodes a bare postcard body (the plaintext inside an encrypted envelope, whose header carries
/// the version), refusing trailing bytes.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(FrameError::Undecodable(format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(FrameError::Undecodable(e.to_string())),
    }
}

async fn read_frame<T, R>(io: &mut R, max: usize) -> io::Result<T>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin + Send,
{
    let mut buf = Vec::new();
    io.take(max as u64 + 1).read_to_end(&mut buf).await?;
    decode_frame(&buf, max).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_frame<T, W>(io: &mut W, value: &T, max: usize) -> io::Result<()>
where
    T: Serialize,
    W: AsyncWrite + Unpin + Send,
{
    let bytes = encode_frame(value, max)?;
    io.write_all(&bytes).await?;
    // No close here: request-response closes the stream after every write, and a second close
    // fails on WebRTC streams (libp2p's framing refuses to close a stream closed both ways).
    io.flush().await
}

/// A request-response codec for `Req`/`Res` with per-direction size caps.
pub struct FrameCodec<Req, Res> {
    max_request: usize,
    max_response: usize,
    _types: PhantomData<fn() -> (Req, Res)>,
}

impl<Req, Res> FrameCodec<Req, Res> {
    /// A codec that accepts requests up to `max_request` and responses up to `max_response` bytes.
    pub fn new(max_request: usize, max_response: usize) -> Self {
        Self { max_request, max_response, _types: PhantomData }
    }
}

impl<Req, Res> Clone for FrameCodec<Req, Res> {
    fn clone(&self) -> Self {
        Self::new(self.max_request, self.max_response)
    }
}

impl<Req, Res> fmt::Debug for FrameCodec<Req, Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameCodec")
            .field("max_request", &self.max_request)
            .field("max_response", &self.max_response)
            .finish()
    }
}

impl<Req, Res> request_response::Codec for FrameCodec<Req, Res>
where
    Req: Serialize + DeserializeOwned + Send + Sync + 'static,
    Res: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Res;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Res>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.max_request).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Res) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SyncRequest;

    #[test]
    fn frames_round_trip_and_bad_frames_are_typed() {
        let req = SyncRequest { after: None, limit: 10, digest: None };
        let bytes = encode_frame(&req, 64).unwrap();
        assert_eq!(decode_frame::<SyncRequest>(&bytes, 64).unwrap(), req);
        assert_eq!(decode_frame::<SyncRequest>(&[], 64), Err(FrameError::Empty));
        assert_eq!(decode_frame::<SyncRequest>(&[2, 0, 10], 64), Err(FrameError::UnknownVersion(2)));
        assert!(matches!(decode_frame::<SyncRequest>(&[1, 9], 64), Err(FrameError::Undecodable(_))));
        assert_eq!(decode_frame::<SyncRequest>(&[1; 65], 64), Err(FrameError::Oversized(64)));
    }
}

//! Joining the lines of an event stream that are ready together into one
//! chunk, so that a watcher of a busy run gets one write (and one wake-up)
//! per burst of events instead of one per event.

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_stream::Stream;

/// At most this many bytes go in one chunk.
const CHUNK: usize = 64 * 1024;

/// A stream of text whose items that are ready at the same time come out
/// as one (concatenated in order); see the module documentation.
pub(crate) struct Coalesce<S> {
    inner: S,
    ended: bool,
}

impl<S> Coalesce<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            ended: false,
        }
    }
}

impl<S: Stream<Item = String> + Unpin> Stream for Coalesce<S> {
    type Item = String;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut out = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(first)) => first,
        };
        while out.len() < CHUNK {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(more)) => out.push_str(&more),
                Poll::Ready(None) => {
                    self.ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        Poll::Ready(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn lines_ready_together_come_as_one_chunk_in_order_and_the_end_follows() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut s = Coalesce::new(tokio_stream::wrappers::UnboundedReceiverStream::new(rx));
        for line in ["a\n", "b\n", "c\n"] {
            tx.send(line.to_owned()).unwrap();
        }
        assert_eq!(s.next().await.as_deref(), Some("a\nb\nc\n"));
        tx.send("d\n".to_owned()).unwrap();
        assert_eq!(s.next().await.as_deref(), Some("d\n"));
        tx.send("e\n".to_owned()).unwrap();
        drop(tx);
        assert_eq!(s.next().await.as_deref(), Some("e\n"));
        assert_eq!(s.next().await, None);
        assert_eq!(s.next().await, None, "and stays ended");
    }
}

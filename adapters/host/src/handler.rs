//! Message handlers as the client keeps them.

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a message handler may return: `()` or a `Result` whose error is reported to the
/// exception listener (and, under auto-ack, returns a queue message to the queue).
pub trait HandlerResult {
    /// The outcome.
    fn into_result(self) -> Result<(), BoxError>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> HandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// A message handler as the dispatch thread keeps it.
pub(crate) type Handler = Box<dyn FnMut(&crate::Message) -> Result<(), BoxError> + Send>;

/// Box a user's handler.
pub(crate) fn handler<F, R>(mut f: F) -> Handler
where
    F: FnMut(&crate::Message) -> R + Send + 'static,
    R: HandlerResult,
{
    Box::new(move |m| f(m).into_result())
}
